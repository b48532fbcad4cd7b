import { createHash, type Hash } from 'node:crypto';
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { HashReply, HashRequest } from './file-hasher.js';

/** The thread of FileHasher: reads what the main thread has written to each file back and hashes it. */
const READ_SIZE = 1024 * 1024;
const buffer = Buffer.allocUnsafe(READ_SIZE);
const jobs = new Map<number, { fd: number; hash: Hash; offset: number; failed?: string }>();
const port = parentPort!;

port.on('message', (request: HashRequest) => {
  const job = jobs.get(request.job);
  switch (request.op) {
    case 'begin':
      jobs.set(request.job, { fd: request.fd, hash: createHash('sha256'), offset: 0 });
      return;
    case 'upto':
      if (!job || job.failed) return;
      try {
        while (job.offset < request.length) {
          const want = Math.min(READ_SIZE, request.length - job.offset);
          const got = readSync(job.fd, buffer, 0, want, job.offset);
          if (got === 0) throw new Error(`the file ends at ${job.offset} bytes`);
          job.hash.update(buffer.subarray(0, got));
          job.offset += got;
        }
      } catch (err) {
        job.failed = (err as Error).message;
      }
      return;
    case 'digest': {
      jobs.delete(request.job);
      const reply: HashReply = !job
        ? { op: 'error', job: request.job, message: 'unknown job' }
        : job.failed
          ? { op: 'error', job: request.job, message: job.failed }
          : { op: 'digest', job: request.job, sha256: job.hash.digest('hex'), size: job.offset };
      port.postMessage(reply);
      return;
    }
    case 'cancel':
      jobs.delete(request.job);
      return;
  }
});
