import { Worker } from 'node:worker_threads';

export type HashRequest =
  | { op: 'begin'; job: number; fd: number }
  | { op: 'upto'; job: number; length: number }
  | { op: 'digest'; job: number }
  | { op: 'cancel'; job: number };

export type HashReply =
  { op: 'digest'; job: number; sha256: string; size: number } | { op: 'error'; job: number; message: string };

const IDLE_MS = 5_000;

/** One file being hashed: say how far it is written, then ask for the digest of all of it. */
export interface FileHashJob {
  /** The first `length` bytes of the file are written and may be read. */
  upto(length: number): void;
  /** sha256 and size of what `upto` covered; the file must stay open until it resolves. */
  digest(): Promise<{ sha256: string; size: number }>;
  /** Ends the job without a digest. */
  cancel(): void;
}

/**
 * sha256 of files as they are written, on a thread of its own that reads them back from the page cache: an
 * import's main thread parses and writes while the other core hashes, instead of taking turns with it.
 */
export class FileHasher {
  private worker: Worker | undefined;
  private idle: NodeJS.Timeout | undefined;
  private nextJob = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (r: { sha256: string; size: number }) => void; reject: (e: Error) => void } | null
  >();

  /** Starts hashing the file open as `fd`; the caller keeps it open until `digest` or `cancel`. */
  begin(fd: number): FileHashJob {
    const job = this.nextJob++;
    this.waiting.set(job, null);
    clearTimeout(this.idle);
    this.post({ op: 'begin', job, fd });
    this.worker?.ref();
    return {
      upto: (length) => this.post({ op: 'upto', job, length }),
      digest: () =>
        new Promise((resolve, reject) => {
          this.waiting.set(job, { resolve, reject });
          this.post({ op: 'digest', job });
        }),
      cancel: () => {
        if (!this.waiting.has(job)) return;
        this.worker?.postMessage({ op: 'cancel', job } satisfies HashRequest);
        this.end(job);
      },
    };
  }

  private end(job: number): void {
    this.waiting.delete(job);
    if (this.waiting.size > 0) return;
    // The thread keeps the process alive only while a job needs it, and its memory (about 10 MB) only a
    // little longer.
    this.worker?.unref();
    clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.close(), IDLE_MS).unref();
  }

  /** Stops the thread; the next job starts a new one. */
  async close(): Promise<void> {
    clearTimeout(this.idle);
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private post(message: HashRequest): void {
    this.thread().postMessage(message);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    worker.on('message', (reply: HashReply) => {
      const waiter = this.waiting.get(reply.job);
      this.end(reply.job);
      if (reply.op === 'digest') waiter?.resolve({ sha256: reply.sha256, size: reply.size });
      else waiter?.reject(new Error(`sha256 failed: ${reply.message}`));
    });
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const [job, waiter] of this.waiting) {
        // A job the lost thread held cannot be finished by a new one.
        waiter?.reject(err);
        this.waiting.set(job, null);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the sha256 thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
