import { existsSync, rmSync } from 'node:fs';
import { defaultMaxParallelism } from '../../domain/sidecar/key-groups.js';
import {
  SIDECAR_RESTORE_MARKER,
  SIDECAR_SOCKET_PATH,
  type Assignment,
  type Mode,
  type Operator,
} from '../../domain/sidecar/protocol.js';
import type { SourceFunction } from './file-source.js';
import { JobGraph, type Node } from './job-graph.js';
import type { RestoredState, SidecarJob } from './sidecar-job.js';
import { SidecarServer } from './sidecar-server.js';
import { SourceRunner } from './source-runner.js';
import { DataStream, KeyedStream } from './stream-api.js';
import type { MultiInputFunction, OperatorOptions } from './stream-types.js';
import type { Barrier, Task, TaskLogic, TaskSnapshot } from './task.js';

export interface StreamJobOptions {
  name: string;
  /** Fixed for the life of the job (state is split into this many key groups); default after Flink's. */
  maxParallelism?: number;
  socketPath?: string;
  restoreMarker?: string;
  /** Exit `run()` once every input is read and a checkpoint taken after that has completed. */
  exitAfterFinalCheckpoint?: boolean;
  /** Called once, when every input has been read and processed. */
  onFinished?: (stats: { records: number; ms: number }) => void;
  log?: (message: string) => void;
}

/**
 * A stream job: replayable sources, keyed and multi-input operators and two-phase-commit sinks, with barriers
 * injected at the sources when cryo triggers a checkpoint. It listens for cryo on a unix socket. The operators
 * are defined through the stream API (stream-api.ts) into the graph (job-graph.ts); the sources run in
 * source-runner.ts; this file holds the job's life and its checkpoints' (trigger, complete, abort, restore).
 */
export class StreamJob implements SidecarJob {
  readonly name: string;
  readonly maxParallelism: number;
  private readonly graph: JobGraph;
  private readonly runner: SourceRunner;
  private readonly restoredOffsets = new Map<Task, Record<string, number>>();
  private readonly triggeredAfterFinish = new Set<number>();
  private server: SidecarServer | undefined;
  private started = false;
  private restoring: { resolve: () => void; promise: Promise<void> } | undefined;
  private done: (() => void) | undefined;
  private startedAt = 0;
  private reportedFinish = false;
  lastCheckpointId = 0;
  /** The highest checkpoint id the job has been triggered with, seen complete, or restored from. */
  highestCheckpointId = 0;

  constructor(private readonly options: StreamJobOptions) {
    this.name = options.name;
    this.maxParallelism = options.maxParallelism ?? defaultMaxParallelism(1);
    this.graph = new JobGraph(this.maxParallelism);
    this.runner = new SourceRunner({
      restoredOffsets: (task) => this.restoredOffsets.get(task) ?? {},
      inputEnded: () => {
        if (this.finished && !this.reportedFinish) {
          this.reportedFinish = true;
          this.options.onFinished?.({ records: this.recordsIn, ms: performance.now() - this.startedAt });
        }
      },
    });
  }

  private get nodes(): Node[] {
    return this.graph.nodes;
  }

  /** Records read by the sources so far. */
  get recordsIn(): number {
    return this.runner.recordsIn;
  }

  source<T>(
    id: string,
    fn: SourceFunction<T>,
    options: OperatorOptions & { recordsPerSecond?: number } = {},
  ): DataStream<T> {
    const node = this.graph.addNode(id, 'source', options.parallelism ?? 1, [], undefined);
    node.source = {
      fn: fn as SourceFunction<unknown>,
      ...(options.recordsPerSecond ? { recordsPerSecond: options.recordsPerSecond } : {}),
    };
    return new DataStream<T>(this.graph, node);
  }

  /** A multi-input operator; keyed (with state) when every input is a KeyedStream. */
  connect<R>(
    id: string,
    inputs: DataStream<unknown>[],
    fn: MultiInputFunction<R>,
    options: OperatorOptions = {},
  ): DataStream<R> {
    const parallelism = options.parallelism ?? inputs[0]?.node.parallelism ?? 1;
    const node = inputs.every((i) => i instanceof KeyedStream)
      ? this.graph.addKeyed(
          id,
          'multi-input',
          parallelism,
          (inputs as KeyedStream<unknown>[]).map((i) => i.keyedInput()),
          fn,
        )
      : this.graph.addStateless(
          id,
          parallelism,
          inputs.map((i) => i.node),
          fn,
        );
    return new DataStream<R>(this.graph, node);
  }

  /** The topology as registered with cryo. */
  operators(): Operator[] {
    return this.graph.operators();
  }

  /** Every sink's output is visible up to this checkpoint. */
  get committedCheckpointId(): number {
    const sinks = this.nodes.flatMap((n) => n.sinks);
    return sinks.length === 0 ? this.lastCheckpointId : Math.min(...sinks.map((s) => s.committedId));
  }

  get finished(): boolean {
    return this.started && this.nodes.every((n) => n.tasks.every((t) => t.finished));
  }

  /** Runs the job until it is stopped, or (with exitAfterFinalCheckpoint) until its last output is committed. */
  async run(): Promise<void> {
    this.graph.build(
      (node, subtask) => this.sourceLogic(node, subtask),
      (task, barrier, snapshot) => this.onSnapshot(task, barrier, snapshot),
    );
    this.server = new SidecarServer(this, this.options.socketPath ?? SIDECAR_SOCKET_PATH, this.log);
    await this.server.listen();
    const marker = this.options.restoreMarker ?? SIDECAR_RESTORE_MARKER;
    if (existsSync(marker)) {
      this.log(`waiting for cryo to restore the job's state (${marker})`);
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.restoring = { resolve, promise };
      await promise;
      rmSync(marker, { force: true });
    }
    this.started = true;
    this.startedAt = performance.now();
    const finished = new Promise<void>((r) => (this.done = r));
    const loops = this.nodes.flatMap((n) =>
      n.tasks.map((t, i) => (n.source ? this.runner.run(n, t, i) : undefined)),
    );
    await Promise.race([finished, Promise.all(loops)]);
    this.stop();
    await Promise.allSettled(loops);
    await Promise.all(this.nodes.flatMap((n) => n.sinks.map((s) => s.settled())));
    await this.server.close();
  }

  stop(): void {
    this.runner.stop();
  }

  // --- called by the sidecar server -------------------------------------------------------------------------

  get awaitingRestore(): boolean {
    return this.restoring !== undefined;
  }

  trigger(checkpointId: number, timestamp: number, mode: Mode, incremental = false): void {
    this.highestCheckpointId = Math.max(this.highestCheckpointId, checkpointId);
    if (this.finished) this.triggeredAfterFinish.add(checkpointId);
    const barrier: Barrier = { kind: 'barrier', id: checkpointId, timestamp, mode, incremental };
    this.runner.inject(
      this.nodes.filter((n) => n.source).flatMap((n) => n.tasks),
      barrier,
    );
  }

  complete(checkpointId: number): void {
    this.lastCheckpointId = Math.max(this.lastCheckpointId, checkpointId);
    this.highestCheckpointId = Math.max(this.highestCheckpointId, checkpointId);
    for (const node of this.nodes) for (const s of node.sinks) s.complete(checkpointId);
    if (this.triggeredAfterFinish.has(checkpointId) && this.options.exitAfterFinalCheckpoint) this.done?.();
  }

  abort(checkpointId: number): void {
    this.runner.drop(checkpointId);
    for (const node of this.nodes) for (const t of node.tasks) t.cancel(checkpointId);
    // A referenced block may be what failed (cryo no longer has it): the next snapshot sends everything.
    for (const node of this.nodes) for (const b of node.backends) b.forgetConfirmed();
  }

  /** Loads the state cryo assigned to each subtask; the job starts reading input afterwards. */
  restore(checkpointId: number, assignments: Assignment[], files: RestoredState): void {
    if (!this.restoring) throw new Error('the job is not waiting for a restore');
    for (const a of assignments) {
      const node = this.nodes.find((n) => n.id === a.operator);
      const task = node?.tasks[a.subtask];
      if (!node || !task) throw new Error(`the job has no subtask ${a.operator}/${a.subtask}`);
      if (node.source) this.restoredOffsets.set(task, a.offsets ?? {});
      const backend = node.backends[a.subtask];
      const sink = node.sinks[a.subtask];
      if (sink) sink.rewind(checkpointId);
      for (const h of a.handles) {
        const bytes = files.get(h.name);
        if (!bytes) throw new Error(`state ${h.name} was not sent`);
        if (backend && h.keyGroupRange) backend.restore(bytes);
        else if (sink) sink.restore(bytes, checkpointId);
      }
    }
    this.lastCheckpointId = checkpointId;
    this.highestCheckpointId = Math.max(this.highestCheckpointId, checkpointId);
    this.restoring.resolve();
    this.restoring = undefined;
  }

  private sourceLogic(node: Node, subtask: number): TaskLogic {
    return {
      process: () => undefined,
      snapshot: () => ({
        offsets: node.readers[subtask]?.offsets() ?? this.restoredOffsets.get(node.tasks[subtask]!) ?? {},
      }),
    };
  }

  private onSnapshot(task: Task, barrier: Barrier, snapshot: TaskSnapshot): void {
    this.server?.report({
      checkpointId: barrier.id,
      operator: task.operator,
      subtask: task.subtask,
      snapshot,
    });
  }

  private readonly log = (message: string): void => {
    (this.options.log ?? ((m: string) => process.stderr.write(`[sidecar] ${m}\n`)))(message);
  };
}
