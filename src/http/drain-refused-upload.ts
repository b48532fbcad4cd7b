import type { IncomingMessage } from 'node:http';

/** How long a refused upload is still read (and dropped) after the refusal is sent. */
const LINGER_MS = 2_000;

/**
 * After an upload is refused part-way (a bad or duplicate archive), reads and drops what the client still sends
 * for a moment, then closes the connection. Closing at once resets it under the client's next write, and the
 * client's HTTP stack then reports a broken pipe instead of the refusal (seen with curl, fetch and node:http).
 */
export function drainRefusedUpload(request: IncomingMessage): void {
  if (request.complete) return;
  const timer = setTimeout(() => request.socket.destroy(), LINGER_MS);
  timer.unref();
  request.once('end', () => clearTimeout(timer));
  request.once('close', () => clearTimeout(timer));
  request.resume();
}
