import type { SinkWriter, Transaction } from './file-sink.js';
import type { Barrier, TaskLogic, TaskSnapshot } from './task.js';

interface Pending {
  checkpointId: number;
  staged: Promise<Transaction>;
}

/**
 * A two-phase-commit sink subtask: each barrier closes the epoch into a pending transaction, which is part of
 * every snapshot until its commit has finished; `complete` commits, in order and off the job's thread.
 */
export class SinkLogic implements TaskLogic {
  private pending: Pending[] = [];
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
    const staged = this.writer.preCommit(barrier.id);
    staged.catch(() => undefined);
    this.pending.push({ checkpointId: barrier.id, staged });
    const pending = this.pending.map((p) => p.staged);
    // The ack waits until every pending transaction is staged: a checkpoint never references unwritten output.
    return { operator: async () => [Buffer.from(JSON.stringify(await Promise.all(pending)))] };
  }

  complete(checkpointId: number): void {
    const ready = this.pending.filter(
      (p) => p.checkpointId <= checkpointId && !this.committingIds.has(p.checkpointId),
    );
    for (const p of ready) this.committingIds.add(p.checkpointId);
    this.committing = this.committing.then(async () => {
      try {
        if (ready.length > 0) await this.writer.commit(await Promise.all(ready.map((p) => p.staged)));
        const done = new Set(ready.map((p) => p.checkpointId));
        this.pending = this.pending.filter((p) => !done.has(p.checkpointId));
        this.committedId = Math.max(this.committedId, checkpointId);
      } catch (err) {
        // Still pending: the next complete, or a restore, commits them.
        process.stderr.write(`[sidecar] commit of checkpoint ${checkpointId} failed: ${String(err)}\n`);
      } finally {
        for (const p of ready) this.committingIds.delete(p.checkpointId);
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
    const txs = JSON.parse(bytes.toString('utf8')) as Transaction[];
    this.writer.commitSync(txs.filter((t) => t.checkpointId <= checkpointId));
    this.committedId = checkpointId;
  }
}
