import type { Mode, StateHandle } from '../../domain/sidecar/protocol.js';
import type { KeyedPart } from './keyed-state.js';

export interface Barrier {
  kind: 'barrier';
  id: number;
  timestamp: number;
  mode: Mode;
  /** Unchanged keyed state may be referenced instead of sent. */
  incremental: boolean;
}

/** What flows on a channel between two subtasks. */
export type Item = { kind: 'record'; value: unknown } | Barrier | { kind: 'end' };

/** A subtask's snapshot, taken synchronously at the barrier; `write` serialises it later, off the hot path. */
export interface TaskSnapshot {
  offsets?: Record<string, number>;
  /** Keyed state, per block of key groups; `confirm` is told each block's handle once the checkpoint completes. */
  keyed?: { parts: KeyedPart[]; confirm: (handles: Map<number, StateHandle>) => void };
  /** Operator state (a sink's pending transactions): one handle without a key-group range. */
  operator?: () => Buffer[] | Promise<Buffer[]>;
}

/** The operator logic of one subtask. */
export interface TaskLogic {
  process(input: number, value: unknown, emit: (value: unknown) => void): void;
  /** Called once every input has ended. */
  finish?(emit: (value: unknown) => void): void;
  /** Called at an aligned barrier, before it is forwarded. */
  snapshot?(barrier: Barrier): TaskSnapshot;
}

/** Where a subtask's output goes: each downstream subtask it feeds, on that subtask's channel for it. */
export interface Output {
  route(value: unknown): { task: Task; channel: number } | undefined;
  all(): { task: Task; channel: number }[];
}

export type SnapshotListener = (task: Task, barrier: Barrier, snapshot: TaskSnapshot) => void;

/**
 * One parallel instance of an operator. Records are pushed synchronously through the graph; a barrier is
 * aligned (exactly_once: each input that delivered it is blocked and buffered until all have) or only counted
 * (at_least_once), then the subtask snapshots its state, forwards the barrier and unblocks.
 */
export class Task {
  readonly outputs: Output[] = [];
  private readonly blocked: boolean[];
  private readonly buffers: Item[][];
  private readonly ended: boolean[];
  private aligning: { barrier: Barrier; seen: Set<number> } | undefined;
  /** Barriers up to this id are stale: completed, subsumed or aborted here. */
  private lastBarrierId = 0;
  private draining = false;
  finished = false;

  constructor(
    readonly operator: string,
    readonly subtask: number,
    readonly channels: number,
    readonly logic: TaskLogic,
    private readonly onSnapshot: SnapshotListener,
  ) {
    this.blocked = Array.from({ length: channels }, () => false);
    this.buffers = Array.from({ length: channels }, () => []);
    this.ended = Array.from({ length: channels }, () => false);
  }

  readonly emit = (value: unknown): void => {
    for (const out of this.outputs) {
      const to = out.route(value);
      to?.task.receive(to.channel, { kind: 'record', value });
    }
  };

  receive(channel: number, item: Item): void {
    if (this.blocked[channel]) {
      this.buffers[channel]!.push(item);
      return;
    }
    this.handle(channel, item);
  }

  /** A source's barrier: it has no inputs to align. */
  injectBarrier(barrier: Barrier): void {
    if (barrier.id <= this.lastBarrierId) return;
    this.lastBarrierId = barrier.id;
    this.snapshotAndForward(barrier);
  }

  /** A source's end of input. */
  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.logic.finish?.(this.emit);
    this.broadcast({ kind: 'end' });
  }

  /** Drops an alignment in progress for checkpoint `id` (aborted by the coordinator). */
  cancel(id: number): void {
    this.lastBarrierId = Math.max(this.lastBarrierId, id);
    if (this.aligning && this.aligning.barrier.id <= id) {
      this.aligning = undefined;
      this.unblockAll();
    }
  }

  private handle(channel: number, item: Item): void {
    switch (item.kind) {
      case 'record':
        this.logic.process(channel, item.value, this.emit);
        return;
      case 'end':
        this.ended[channel] = true;
        if (!this.finished && this.ended.every(Boolean)) this.end();
        return;
      case 'barrier':
        this.onBarrier(channel, item);
        return;
    }
  }

  private onBarrier(channel: number, barrier: Barrier): void {
    if (barrier.id <= this.lastBarrierId) return;
    if (this.aligning && barrier.id > this.aligning.barrier.id) {
      // A newer barrier arrived before the older one was aligned: the older checkpoint cannot complete here.
      this.aligning = undefined;
      this.unblockAll();
    }
    this.aligning ??= { barrier, seen: new Set() };
    this.aligning.seen.add(channel);
    if (this.aligning.seen.size < this.channels) {
      if (barrier.mode === 'exactly_once') this.blocked[channel] = true;
      return;
    }
    this.aligning = undefined;
    this.lastBarrierId = barrier.id;
    this.snapshotAndForward(barrier);
    this.unblockAll();
  }

  private snapshotAndForward(barrier: Barrier): void {
    const snapshot = this.logic.snapshot?.(barrier) ?? {};
    this.onSnapshot(this, barrier, snapshot);
    this.broadcast(barrier);
  }

  private broadcast(item: Item): void {
    for (const out of this.outputs) for (const to of out.all()) to.task.receive(to.channel, item);
  }

  private unblockAll(): void {
    this.blocked.fill(false);
    if (this.draining) return;
    this.draining = true;
    try {
      // Replay what was held back, in each channel's order, until nothing more can move.
      for (let moved = true; moved;) {
        moved = false;
        for (let ch = 0; ch < this.channels; ch++) {
          const buffer = this.buffers[ch]!;
          while (!this.blocked[ch] && buffer.length > 0) {
            this.handle(ch, buffer.shift()!);
            moved = true;
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
