import http, { type IncomingMessage } from 'node:http';

/**
 * Sends a request whose body (if any) is already in memory and resolves with the response, unread. node:http
 * rather than fetch: loading fetch (undici) costs a command-line call about 0.2 s here.
 */
export async function openRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: string,
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  const target = new URL(url);
  const client = await clientFor(target);
  return new Promise((resolve, reject) => {
    const req = client.request(target, {
      method,
      headers:
        body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      ...(signal ? { signal } : {}),
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.end(body);
  });
}

/** The whole body of a response, as text. */
export async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** node:http, or node:https for an https URL (loaded only then: it costs every command-line call ~10 ms). */
export async function clientFor(url: URL): Promise<Pick<typeof http, 'request'>> {
  return url.protocol === 'https:' ? await import('node:https') : http;
}
