import type { CheckpointMetadata } from '../../domain/sidecar/metadata.js';
import type { AckFrame, DeclineFrame, Frame, StateHandle } from '../../domain/sidecar/protocol.js';
import { DEFAULT_TOLERABLE_FAILURES } from '../../defaults.js';

export type { CheckpointMetadata };

/** Timers the coordinator uses, injected so that tests drive time. */
export interface CoordinatorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

export const systemCoordinatorClock: CoordinatorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** Where the coordinator keeps what must survive it: the last checkpoint id, and each complete `_metadata`. */
export interface CoordinatorStore {
  /** The highest checkpoint id ever handed out (0 when none). */
  lastCheckpointId(): Promise<number>;
  /** Reserves `id` durably before it is used, so that ids increase strictly also across restarts. */
  reserveCheckpointId(id: number): Promise<void>;
  /** Writes `_metadata` of checkpoint `id` durably (temp file, fsync, rename). */
  writeMetadata(id: number, metadata: CheckpointMetadata): Promise<void>;
  /** Removes whatever state files an aborted or ignored checkpoint left. */
  discard(id: number, handles: StateHandle[]): Promise<void>;
}

export interface SubtaskRef {
  operator: string;
  subtask: number;
}

export interface CoordinatorOptions {
  timeoutMs: number;
  maxConcurrent: number;
  minPauseMs: number;
  tolerableFailures: number;
}

export const DEFAULT_COORDINATOR_OPTIONS: CoordinatorOptions = {
  timeoutMs: 60_000,
  maxConcurrent: 1,
  minPauseMs: 0,
  tolerableFailures: DEFAULT_TOLERABLE_FAILURES,
};

export interface JobTopology {
  job: string;
  maxParallelism: number;
  subtasks: SubtaskRef[];
}

export type CheckpointOutcome =
  | { status: 'complete'; checkpointId: number; metadata: CheckpointMetadata }
  | { status: 'aborted'; checkpointId: number; reason: AbortReason; message: string };

export type AbortReason =
  'EXPIRED' | 'DECLINED' | 'SUBSUMED' | 'METADATA_FAILED' | 'COORDINATOR_STOPPED' | 'CONNECTION_LOST';

/** Why a trigger was not started at all. */
export class TriggerRefusedError extends Error {
  constructor(
    readonly code: 'TOO_MANY_CONCURRENT' | 'MIN_PAUSE' | 'STOPPED' | 'TOO_MANY_FAILURES',
    message: string,
  ) {
    super(message);
    this.name = 'TriggerRefusedError';
  }
}

interface Pending {
  id: number;
  timestamp: number;
  mode: 'exactly_once' | 'at_least_once';
  waiting: Set<string>;
  acked: Map<string, AckFrame>;
  timer: { cancel(): void };
  settle: (outcome: CheckpointOutcome) => void;
  finishing: boolean;
}

const key = (r: SubtaskRef) => `${r.operator}/${r.subtask}`;

/**
 * A checkpoint coordinator after Flink's: it triggers checkpoints with strictly increasing ids, collects one
 * ack per subtask, makes `_metadata` durable, and only then tells every task `complete`. Timeouts abort with
 * EXPIRED; declines abort; late, duplicate and unknown acks are ignored and their state discarded; consecutive
 * failures beyond the tolerable count stop further triggers until a checkpoint completes.
 */
export class CheckpointCoordinator {
  private readonly options: CoordinatorOptions;
  private readonly pending = new Map<number, Pending>();
  private lastId: number | undefined;
  private lastIdLoad: Promise<number> | undefined;
  private starting = 0;
  private lastCompletedId = 0;
  private lastCompletedAt: number | undefined;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly topology: JobTopology,
    private readonly store: CoordinatorStore,
    private readonly clock: CoordinatorClock,
    private readonly send: (frame: Frame) => void,
    options: Partial<CoordinatorOptions> = {},
  ) {
    this.options = { ...DEFAULT_COORDINATOR_OPTIONS, ...options };
  }

  get latestCompleted(): number {
    return this.lastCompletedId;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Starts checkpoint n+1; resolves when it completes or aborts. */
  async trigger(
    mode: 'exactly_once' | 'at_least_once' = 'exactly_once',
    options: { incremental?: boolean } = {},
  ): Promise<CheckpointOutcome> {
    if (this.stopped) throw new TriggerRefusedError('STOPPED', 'the coordinator is stopped');
    if (this.failures > this.options.tolerableFailures) {
      throw new TriggerRefusedError(
        'TOO_MANY_FAILURES',
        `${this.failures} checkpoints failed in a row, more than the ${this.options.tolerableFailures} tolerated`,
      );
    }
    const inFlight = this.pending.size + this.starting;
    if (inFlight >= this.options.maxConcurrent) {
      throw new TriggerRefusedError(
        'TOO_MANY_CONCURRENT',
        `${inFlight} checkpoint(s) already in progress (max ${this.options.maxConcurrent})`,
      );
    }
    const now = this.clock.now();
    if (this.lastCompletedAt !== undefined && now - this.lastCompletedAt < this.options.minPauseMs) {
      throw new TriggerRefusedError(
        'MIN_PAUSE',
        `the last checkpoint completed ${now - this.lastCompletedAt} ms ago, less than the ${this.options.minPauseMs} ms pause`,
      );
    }
    this.starting++;
    let id: number;
    try {
      const loaded = await (this.lastIdLoad ??= this.store.lastCheckpointId());
      // Synchronous from here to the increment: two triggers never take the same id.
      id = Math.max(this.lastId ?? loaded, loaded) + 1;
      this.lastId = id;
      await this.store.reserveCheckpointId(id);
    } finally {
      this.starting--;
    }
    return new Promise<CheckpointOutcome>((resolve) => {
      const p: Pending = {
        id,
        timestamp: now,
        mode,
        waiting: new Set(this.topology.subtasks.map(key)),
        acked: new Map(),
        timer: this.clock.setTimeout(
          () => void this.abort(id, 'EXPIRED', `not every subtask acked within ${this.options.timeoutMs} ms`),
          this.options.timeoutMs,
        ),
        settle: resolve,
        finishing: false,
      };
      this.pending.set(id, p);
      this.send({
        v: 1,
        type: 'trigger',
        checkpointId: id,
        timestamp: now,
        mode,
        ...(options.incremental ? { incremental: true } : {}),
      });
    });
  }

  async onAck(ack: AckFrame): Promise<void> {
    const p = this.pending.get(ack.checkpointId);
    const k = key(ack);
    if (!p || p.finishing || !p.waiting.has(k)) {
      // Late (expired, aborted, completed), unknown or duplicate: the state it names is not part of anything.
      await this.store.discard(ack.checkpointId, duplicateSafe(p, k, ack));
      return;
    }
    p.waiting.delete(k);
    p.acked.set(k, ack);
    if (p.waiting.size === 0) await this.complete(p);
  }

  async onDecline(decline: DeclineFrame): Promise<void> {
    const p = this.pending.get(decline.checkpointId);
    if (!p || p.finishing) return;
    await this.abort(p.id, 'DECLINED', `${decline.operator}/${decline.subtask} declined: ${decline.reason}`);
  }

  /** Aborts every checkpoint in flight (the job's connection is gone); it counts as a failure. */
  async abortPending(reason: 'CONNECTION_LOST' | 'DECLINED', message: string): Promise<void> {
    for (const id of [...this.pending.keys()]) await this.abort(id, reason, message);
  }

  /** Aborts everything in flight; later acks are discarded. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const id of [...this.pending.keys()])
      await this.abort(id, 'COORDINATOR_STOPPED', 'the coordinator stopped');
  }

  private async complete(p: Pending): Promise<void> {
    p.finishing = true;
    p.timer.cancel();
    const metadata: CheckpointMetadata = {
      checkpointId: p.id,
      job: this.topology.job,
      timestamp: p.timestamp,
      mode: p.mode,
      maxParallelism: this.topology.maxParallelism,
      subtasks: [...p.acked.values()].map((a) => ({
        operator: a.operator,
        subtask: a.subtask,
        handles: a.handles,
        offsets: a.offsets ?? {},
      })),
    };
    try {
      await this.store.writeMetadata(p.id, metadata);
    } catch (err) {
      p.finishing = false;
      await this.abort(p.id, 'METADATA_FAILED', `_metadata could not be written: ${String(err)}`);
      return;
    }
    this.pending.delete(p.id);
    this.lastCompletedId = p.id;
    this.lastCompletedAt = this.clock.now();
    this.failures = 0;
    // Older checkpoints still in flight can no longer be the latest: abort them as subsumed.
    for (const older of [...this.pending.values()].filter((o) => o.id < p.id)) {
      await this.abort(older.id, 'SUBSUMED', `checkpoint ${p.id} completed first`);
    }
    this.send({ v: 1, type: 'complete', checkpointId: p.id });
    p.settle({ status: 'complete', checkpointId: p.id, metadata });
  }

  private async abort(id: number, reason: AbortReason, message: string): Promise<void> {
    const p = this.pending.get(id);
    if (!p || p.finishing) return;
    this.pending.delete(id);
    p.timer.cancel();
    if (reason !== 'SUBSUMED' && reason !== 'COORDINATOR_STOPPED' && id > this.lastCompletedId)
      this.failures++;
    await this.store.discard(
      id,
      [...p.acked.values()].flatMap((a) => a.handles),
    );
    this.send({ v: 1, type: 'abort', checkpointId: id, reason: `${reason}: ${message}` });
    p.settle({ status: 'aborted', checkpointId: id, reason, message });
  }
}

/** The handles of an ignored ack, minus any a pending checkpoint already holds under the same names. */
function duplicateSafe(p: Pending | undefined, k: string, ack: AckFrame): StateHandle[] {
  const kept = new Set((p?.acked.get(k)?.handles ?? []).map((h) => h.name));
  return ack.handles.filter((h) => !kept.has(h.name));
}
