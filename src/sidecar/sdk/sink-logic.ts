import type { SinkWriter, Transaction } from './file-sink.js';
import type { Barrier, TaskLogic, TaskSnapshot } from './task.js';

/**
 * A two-phase-commit sink subtask: each barrier closes the epoch into a pending transaction, which is part of
 * every snapshot until its commit has finished; `complete` commits, in order and off the job's thread.
 */
export class SinkLogic implements TaskLogic {
  /** Transactions not yet committed, including those being committed: a snapshot keeps them until done. */
  private pending: Transaction[] = [];
  private readonly committingIds = new Set<number>();
  /** Commits run one after another, in checkpoint order. */
  private committing: Promise<void> = Promise.resolve();
  /** Every transaction up to this checkpoint is visible. */
  committedId = 0;

  constructor(private readonly writer: SinkWriter<unknown>) {}

  process(_input: number, value: unknown): void {
    this.writer.write(value);
  }

  snapshot(barrier: Barrier): TaskSnapshot {
    this.pending.push(this.writer.preCommit(barrier.id));
    const pending = [...this.pending];
    return { operator: () => encodeTransactions(pending) };
  }

  complete(checkpointId: number): void {
    const ready = this.pending.filter(
      (t) => t.checkpointId <= checkpointId && !this.committingIds.has(t.checkpointId),
    );
    for (const t of ready) this.committingIds.add(t.checkpointId);
    this.committing = this.committing.then(async () => {
      try {
        if (ready.length > 0) await this.writer.commit(ready);
        const done = new Set(ready.map((t) => t.checkpointId));
        this.pending = this.pending.filter((t) => !done.has(t.checkpointId));
        this.committedId = Math.max(this.committedId, checkpointId);
      } catch (err) {
        // Still pending: the next complete, or a restore, commits them.
        process.stderr.write(`[sidecar] commit of checkpoint ${checkpointId} failed: ${String(err)}\n`);
      } finally {
        for (const t of ready) this.committingIds.delete(t.checkpointId);
      }
    });
  }

  /** Waits for the commits in flight. */
  settled(): Promise<void> {
    return this.committing;
  }

  rewind(checkpointId: number): void {
    this.writer.rewind(checkpointId);
  }

  /** The restored checkpoint is complete: its pending transactions are committed (again, harmlessly). */
  restore(bytes: Buffer, checkpointId: number): void {
    this.writer.commitSync(decodeTransactions(bytes).filter((t) => t.checkpointId <= checkpointId));
    this.committedId = checkpointId;
  }
}

/** Pending transactions as state: per transaction [header length u32][header JSON][data], no escaping. */
function encodeTransactions(txs: Transaction[]): Buffer[] {
  return txs.flatMap((t) => {
    const data = t.data;
    const header = Buffer.from(
      JSON.stringify({ checkpointId: t.checkpointId, subtask: t.subtask, size: data.length }),
    );
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(header.length);
    return [len, header, data];
  });
}

function decodeTransactions(b: Buffer): Transaction[] {
  const out: Transaction[] = [];
  for (let o = 0; o < b.length;) {
    const hl = b.readUInt32LE(o);
    const h = JSON.parse(b.toString('utf8', o + 4, o + 4 + hl)) as {
      checkpointId: number;
      subtask: number;
      size: number;
    };
    const start = o + 4 + hl;
    if (start + h.size > b.length) throw new Error('the sink state is truncated');
    out.push({
      checkpointId: h.checkpointId,
      subtask: h.subtask,
      data: b.subarray(start, start + h.size),
    });
    o = start + h.size;
  }
  return out;
}
