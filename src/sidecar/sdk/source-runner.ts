import type { Node } from './job-graph.js';
import type { Barrier, Task } from './task.js';

/**
 * The run loop of the job's source subtasks: each reads its input in batches (at a set rate, or as fast as it
 * can), injects the barriers of triggered checkpoints between batches, and sleeps when idle until woken.
 */
export class SourceRunner {
  private readonly pendingBarriers = new Map<Task, Barrier[]>();
  private readonly wakers = new Set<() => void>();
  private stopped = false;
  recordsIn = 0;

  constructor(
    private readonly hooks: {
      /** Where a restored source subtask starts reading. */
      restoredOffsets(task: Task): Record<string, number>;
      /** A source subtask has read all of its input. */
      inputEnded(): void;
    },
  ) {}

  /** Queues `barrier` for each of these source tasks, injected before their next batch. */
  inject(tasks: Task[], barrier: Barrier): void {
    for (const task of tasks) {
      const queue = this.pendingBarriers.get(task) ?? [];
      queue.push(barrier);
      this.pendingBarriers.set(task, queue);
    }
    this.wakeAll();
  }

  /** Drops a checkpoint's barriers not injected yet. */
  drop(checkpointId: number): void {
    for (const [task, queue] of this.pendingBarriers) {
      this.pendingBarriers.set(
        task,
        queue.filter((b) => b.id !== checkpointId),
      );
    }
  }

  stop(): void {
    this.stopped = true;
    this.wakeAll();
  }

  async run(node: Node, task: Task, subtask: number): Promise<void> {
    const source = node.source!;
    const reader = source.fn.open(subtask, node.parallelism, this.hooks.restoredOffsets(task));
    node.readers[subtask] = reader;
    const batch = source.recordsPerSecond ? Math.max(1, Math.round(source.recordsPerSecond / 100)) : 256;
    const pause = source.recordsPerSecond ? (batch * 1000) / source.recordsPerSecond : 0;
    const count = (v: unknown) => {
      this.recordsIn++;
      task.emit(v);
    };
    try {
      while (!this.stopped) {
        const barriers = this.pendingBarriers.get(task);
        if (barriers && barriers.length > 0) {
          this.pendingBarriers.set(task, []);
          for (const b of barriers) task.injectBarrier(b);
        }
        if (!task.finished && !reader.poll(count, batch)) {
          task.end();
          this.hooks.inputEnded();
        }
        if (task.finished) await this.sleep(undefined);
        else await this.sleep(pause);
      }
    } finally {
      reader.close();
    }
  }

  private wakeAll(): void {
    for (const wake of this.wakers) wake();
  }

  /** Waits `ms` (undefined: until woken by a trigger or stop); 0 yields to I/O once. */
  private sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.wakers.delete(wake);
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.wakers.add(wake);
      const timer = ms === undefined ? undefined : ms === 0 ? undefined : setTimeout(wake, ms);
      if (ms === 0) setImmediate(wake);
    });
  }
}
