import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';

/** One transaction: the output of one epoch, pre-committed at barrier `checkpointId`. */
export interface Transaction {
  checkpointId: number;
  subtask: number;
  data: Buffer;
}

/** A sink with two-phase commit: output of epoch n becomes visible only when checkpoint n is complete. */
export interface TwoPhaseCommitSink<T> {
  open(subtask: number): SinkWriter<T>;
}

export interface SinkWriter<T> {
  write(value: T): void;
  /** Closes the current epoch into a transaction, at barrier `checkpointId`. */
  preCommit(checkpointId: number): Transaction;
  /** Makes transactions visible, in order; must be idempotent, since a restore commits them again. */
  commit(transactions: Transaction[]): Promise<void>;
  /** The same, synchronously (during a restore, before the job reads input). */
  commitSync(transactions: Transaction[]): void;
  /** After a restore from `checkpointId`: drops visible output of later epochs, which will be produced again. */
  rewind(checkpointId: number): void;
}

/**
 * Writes each committed transaction as one file, `part-<subtask>-<checkpoint id>` in `dir`, through a temporary
 * file, fsync and rename: a transaction is visible whole or not at all, and committing it again is harmless.
 */
export class TransactionalFileSink<T> implements TwoPhaseCommitSink<T> {
  constructor(
    private readonly dir: string,
    private readonly format: (value: T) => string,
  ) {}

  open(subtask: number): SinkWriter<T> {
    mkdirSync(this.dir, { recursive: true });
    let epoch: string[] = [];
    const dir = this.dir;
    return {
      write: (value) => void epoch.push(this.format(value)),
      preCommit(checkpointId) {
        const tx = { checkpointId, subtask, data: Buffer.from(epoch.join('')) };
        epoch = [];
        return tx;
      },
      async commit(transactions) {
        // Off the job's thread (libuv's pool): a commit of a busy epoch's output would stall the records.
        for (const tx of transactions) {
          const name = partName(tx.subtask, tx.checkpointId);
          const tmp = path.join(dir, `.${name}.tmp`);
          const fh = await open(tmp, 'w');
          try {
            await fh.writeFile(tx.data);
            await fh.sync();
          } finally {
            await fh.close();
          }
          await rename(tmp, path.join(dir, name));
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
          const name = partName(tx.subtask, tx.checkpointId);
          const tmp = path.join(dir, `.${name}.tmp`);
          const fd = openSync(tmp, 'w');
          try {
            writeSync(fd, tx.data);
            fsyncSync(fd);
          } finally {
            closeSync(fd);
          }
          renameSync(tmp, path.join(dir, name));
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
          const m = /^part-\d+-(\d+)$/.exec(name);
          if ((m && Number(m[1]) > checkpointId) || name.endsWith('.tmp'))
            rmSync(path.join(dir, name), { force: true });
        }
      },
    };
  }
}

function partName(subtask: number, checkpointId: number): string {
  return `part-${subtask}-${String(checkpointId).padStart(10, '0')}`;
}
