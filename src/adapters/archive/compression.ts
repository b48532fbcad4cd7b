import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { execa } from 'execa';
import type { Compression } from '../../domain/checkpoint.js';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

export function detectCompression(head: Buffer): Compression {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return 'gzip';
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/** Compresses a stream: gzip with zlib, zstd with the zstd tool (Node 20 has no zstd). */
export function compress(input: Readable, kind: Compression): Readable {
  if (kind === 'none') return input;
  if (kind === 'gzip') return pipe(input, zlib.createGzip({ level: 3 }));
  return throughProcess(input, ['-q', '-c', '-3', '-T0']);
}

export function decompress(input: Readable, kind: Compression): Readable {
  if (kind === 'none') return input;
  if (kind === 'gzip') return pipe(input, zlib.createGunzip());
  return throughProcess(input, ['-d', '-q', '-c']);
}

function pipe(input: Readable, transform: NodeJS.ReadWriteStream & Readable): Readable {
  pipeline(input, transform).catch((err: Error) => transform.destroy(err));
  return transform;
}

function throughProcess(input: Readable, args: string[]): Readable {
  const out = new PassThrough();
  const proc = execa('zstd', args, {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false },
  });
  pipeline(input, proc.stdin!).catch(() => proc.kill());
  proc.stdout!.pipe(out, { end: false });
  proc.then(
    () => out.end(),
    (err: { shortMessage?: string; stderr?: string }) =>
      out.destroy(new Error(`zstd failed: ${err.stderr?.trim() || err.shortMessage || 'unknown error'}`)),
  );
  out.on('close', () => {
    if (proc.exitCode === undefined || proc.exitCode === null) proc.kill();
  });
  return out;
}

/** Reads the first bytes of a stream and gives back a stream that still starts with them. */
export function peek(input: Readable, bytes: number): Promise<{ head: Buffer; stream: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let ended = false;
    const finish = () => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      const head = Buffer.concat(chunks);
      const rest = new PassThrough();
      rest.write(head);
      if (ended) {
        rest.end();
      } else {
        input.on('error', (err) => rest.destroy(err));
        input.pipe(rest);
      }
      resolve({ head, stream: rest });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= bytes) finish();
    };
    const onEnd = () => {
      ended = true;
      finish();
    };
    const onError = (err: Error) => reject(err);
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}
