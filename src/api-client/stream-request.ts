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
  idleMs = 0,
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
    // A peer that stops reading the body, or stops answering after it, fails the request once it has been silent
    // this long; bytes moving either way keep it going, however long the whole transfer takes.
    let idle: NodeJS.Timeout | undefined;
    const stillMoving = () => {
      if (idleMs <= 0) return;
      clearTimeout(idle);
      idle = setTimeout(
        () => req.destroy(new Error(`no progress either way for ${idleMs / 1000} s`)),
        idleMs,
      );
      idle.unref();
    };
    stillMoving();
    req.on('close', () => clearTimeout(idle));
    body.on('data', stillMoving);
    req.on('response', (res) => {
      answered = true;
      stillMoving();
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        stillMoving();
        chunks.push(chunk);
      });
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
