import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import path from 'node:path';

/** One pre-committed transaction: what a snapshot keeps of an epoch's output (a reference, not the data). */
export interface Transaction {
  checkpointId: number;
  subtask: number;
  /** The staged output, as the sink names it (for the file sink: a hidden file in its directory). */
  staged: string;
  size: number;
}

/** A sink with two-phase commit: output of epoch n becomes visible only when checkpoint n is complete. */
export interface TwoPhaseCommitSink<T> {
  open(subtask: number): SinkWriter<T>;
}

export interface SinkWriter<T> {
  write(value: T): void;
  /**
   * Closes the current epoch at barrier `checkpointId` (synchronously: later writes belong to the next epoch) and
   * stages its output durably; resolves to the transaction once staged.
   */
  preCommit(checkpointId: number): Promise<Transaction>;
  /** Makes transactions visible, in order; idempotent, since a restore commits them again. */
  commit(transactions: Transaction[]): Promise<void>;
  /** The same, synchronously (during a restore, before the job reads input). */
  commitSync(transactions: Transaction[]): void;
  /** After a restore from `checkpointId`: drops output of later epochs, visible or staged; it will come again. */
  rewind(checkpointId: number): void;
}

const PART = /^part-(\d+)-(\d+)$/;
const FLUSH_CHARS = 64 << 10;
const PENDING = /^\.pending-(\d+)-(\d+)$/;

/**
 * Like Flink's FileSink: an epoch's output is staged at the barrier as a hidden pending file (written, fsynced),
 * and committed by renaming it to `part-<subtask>-<checkpoint id>`, so a transaction is visible whole or not at all.
 * The output directory must outlive the container (a volume or bind mount) for a restore to find staged output.
 */
export class TransactionalFileSink<T> implements TwoPhaseCommitSink<T> {
  constructor(
    private readonly dir: string,
    private readonly format: (value: T) => string,
  ) {}

  open(subtask: number): SinkWriter<T> {
    const dir = this.dir;
    mkdirSync(dir, { recursive: true });
    let chunks: Buffer[] = [];
    let text = '';
    const names = (tx: Transaction) => ({
      from: path.join(dir, tx.staged),
      to: path.join(dir, partName(tx.subtask, tx.checkpointId)),
    });
    return {
      write: (value) => {
        // A rope flushed into bytes every 64 KiB: three times cheaper than joining an array of lines at the barrier.
        text += this.format(value);
        if (text.length >= FLUSH_CHARS) {
          chunks.push(Buffer.from(text));
          text = '';
        }
      },
      async preCommit(checkpointId) {
        const data = Buffer.concat([...chunks, Buffer.from(text)]);
        chunks = [];
        text = '';
        const staged = `.pending-${subtask}-${pad(checkpointId)}`;
        // Off the job's thread (libuv's pool); the ack waits for it.
        const fh = await open(path.join(dir, staged), 'w');
        try {
          await fh.writeFile(data);
          await fh.sync();
        } finally {
          await fh.close();
        }
        return { checkpointId, subtask, staged, size: data.length };
      },
      async commit(transactions) {
        for (const tx of transactions) {
          const { from, to } = names(tx);
          await rename(from, to).catch(async (err: NodeJS.ErrnoException) => {
            // Committed already (by this job before it was restored, or by an earlier commit).
            if (err.code !== 'ENOENT' || !(await stat(to).catch(() => undefined))) throw err;
          });
        }
        if (transactions.length > 0) {
          const d = await open(dir, 'r');
          try {
            await d.sync();
          } finally {
            await d.close();
          }
        }
      },
      commitSync(transactions) {
        for (const tx of transactions) {
          const { from, to } = names(tx);
          try {
            renameSync(from, to);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !statSync(to, { throwIfNoEntry: false }))
              throw err;
          }
        }
        const d = openSync(dir, 'r');
        try {
          fsyncSync(d);
        } finally {
          closeSync(d);
        }
      },
      rewind(checkpointId) {
        for (const name of readdirSync(dir)) {
          const m = PART.exec(name) ?? PENDING.exec(name);
          if (m && Number(m[2]) > checkpointId) rmSync(path.join(dir, name), { force: true });
        }
      },
    };
  }
}

const pad = (id: number) => String(id).padStart(10, '0');

function partName(subtask: number, checkpointId: number): string {
  return `part-${subtask}-${pad(checkpointId)}`;
}
