import { clientFor } from './http-request.js';
import type { Readable } from 'node:stream';

/** What a server answered to a request with a streamed body. */
export interface StreamAnswer {
  status: number;
  text: string;
}

/**
 * Sends a request with a streamed body and resolves with the answer, even when the server answers before it
 * has read the whole body and closes the connection (a refused import): fetch would report only the broken pipe.
 */
export async function streamRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: Readable,
  signal?: AbortSignal,
): Promise<StreamAnswer> {
  const target = new URL(url);
  const client = await clientFor(target);
  return new Promise((resolve, reject) => {
    const req = client.request(target, {
      method,
      headers,
      ...(signal ? { signal } : {}),
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        // The answer is all there is; a server that answered early reads no more of the body.
        body.unpipe(req);
        body.destroy();
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    body.on('error', (err) => req.destroy(err));
    body.pipe(req);
  });
}
