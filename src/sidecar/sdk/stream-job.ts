import { existsSync, rmSync } from 'node:fs';
import {
  defaultMaxParallelism,
  keyGroupFor,
  keyGroupRange,
  subtaskFor,
} from '../../domain/sidecar/key-groups.js';
import {
  SIDECAR_RESTORE_MARKER,
  SIDECAR_SOCKET_PATH,
  type Assignment,
  type Mode,
  type Operator,
} from '../../domain/sidecar/protocol.js';
import type { TwoPhaseCommitSink } from './file-sink.js';
import { SinkLogic } from './sink-logic.js';
import type { SourceFunction, SourceReader } from './file-source.js';
import { KeyedStateBackend, type MapState, type ValueState } from './keyed-state.js';
import { SidecarServer } from './sidecar-server.js';
import type { RestoredState, SidecarJob } from './sidecar-job.js';
import { Task, type Barrier, type Output, type TaskLogic, type TaskSnapshot } from './task.js';

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

export interface Context<R> {
  emit(value: R): void;
}

export interface KeyedContext<R> extends Context<R> {
  readonly key: string;
  valueState<V>(name: string): ValueState<V>;
  mapState<V>(name: string): MapState<V>;
}

export type KeyedProcessFunction<T, R> = (value: T, ctx: KeyedContext<R>) => void;

/** An operator with several inputs; `input` is the index of the stream in `connect`'s list. */
export type MultiInputFunction<R> = (input: number, value: unknown, ctx: KeyedContext<R>) => void;

interface OperatorOptions {
  parallelism?: number;
}

type Partition = { type: 'forward' } | { type: 'rebalance' } | { type: 'key'; keyOf: (v: unknown) => string };

interface Node {
  id: string;
  kind: Operator['kind'];
  parallelism: number;
  inputs: { from: Node; partition: Partition }[];
  logic?: (subtask: number) => TaskLogic;
  source?: { fn: SourceFunction<unknown>; recordsPerSecond?: number };
  tasks: Task[];
  /** For keyed operators: each subtask's state. */
  backends: KeyedStateBackend[];
  sinks: SinkLogic[];
  readers: SourceReader<unknown>[];
}

/** A stream of records between operators. */
export class DataStream<T> {
  constructor(
    protected readonly job: StreamJob,
    readonly node: Node,
  ) {}

  map<R>(id: string, fn: (value: T) => R, options: OperatorOptions = {}): DataStream<R> {
    return this.flatMap<R>(id, (v) => [fn(v)], options);
  }

  flatMap<R>(id: string, fn: (value: T) => Iterable<R>, options: OperatorOptions = {}): DataStream<R> {
    const parallelism = options.parallelism ?? this.node.parallelism;
    const partition: Partition =
      parallelism === this.node.parallelism ? { type: 'forward' } : { type: 'rebalance' };
    const node = this.job.addNode(id, 'map', parallelism, [{ from: this.node, partition }], () => ({
      process: (_input, value, emit) => {
        for (const r of fn(value as T)) emit(r);
      },
    }));
    return new DataStream<R>(this.job, node);
  }

  keyBy(keyOf: (value: T) => string): KeyedStream<T> {
    return new KeyedStream<T>(this.job, this.node, keyOf);
  }

  sink(id: string, sink: TwoPhaseCommitSink<T>, options: OperatorOptions = {}): void {
    const parallelism = options.parallelism ?? 1;
    const partition: Partition =
      parallelism === this.node.parallelism ? { type: 'forward' } : { type: 'rebalance' };
    const node = this.job.addNode(id, 'sink', parallelism, [{ from: this.node, partition }], (subtask) => {
      const logic = new SinkLogic(sink.open(subtask));
      node.sinks[subtask] = logic;
      return logic;
    });
  }
}

/** A stream partitioned by key: each key's records go to the subtask that owns its key group. */
export class KeyedStream<T> extends DataStream<T> {
  constructor(
    job: StreamJob,
    node: Node,
    readonly keyOf: (value: T) => string,
  ) {
    super(job, node);
  }

  process<R>(id: string, fn: KeyedProcessFunction<T, R>, options: OperatorOptions = {}): DataStream<R> {
    const node = this.job.addKeyed<R>(
      id,
      'keyed',
      options.parallelism ?? this.node.parallelism,
      [this as unknown as KeyedStream<unknown>],
      (_input, v, ctx) => fn(v as T, ctx),
    );
    return new DataStream<R>(this.job, node);
  }
}

/**
 * A stream job: replayable sources, keyed and multi-input operators and two-phase-commit sinks, with barriers
 * injected at the sources when cryo triggers a checkpoint. It listens for cryo on a unix socket.
 */
export class StreamJob implements SidecarJob {
  readonly name: string;
  readonly maxParallelism: number;
  private readonly nodes: Node[] = [];
  private readonly pendingBarriers = new Map<Task, Barrier[]>();
  private readonly wakers = new Set<() => void>();
  private readonly restoredOffsets = new Map<Task, Record<string, number>>();
  private readonly triggeredAfterFinish = new Set<number>();
  /** For each operator: the first channel of each input edge, then the channel count. */
  private readonly channelBases = new Map<Node, number[]>();
  private server: SidecarServer | undefined;
  private started = false;
  private stopped = false;
  private restoring: { resolve: () => void; promise: Promise<void> } | undefined;
  private done: (() => void) | undefined;
  private startedAt = 0;
  private reportedFinish = false;
  lastCheckpointId = 0;
  /** The highest checkpoint id the job has been triggered with, seen complete, or restored from. */
  highestCheckpointId = 0;
  recordsIn = 0;

  constructor(private readonly options: StreamJobOptions) {
    this.name = options.name;
    this.maxParallelism = options.maxParallelism ?? defaultMaxParallelism(1);
  }

  source<T>(
    id: string,
    fn: SourceFunction<T>,
    options: OperatorOptions & { recordsPerSecond?: number } = {},
  ): DataStream<T> {
    const node = this.addNode(id, 'source', options.parallelism ?? 1, [], undefined);
    node.source = {
      fn: fn as SourceFunction<unknown>,
      ...(options.recordsPerSecond ? { recordsPerSecond: options.recordsPerSecond } : {}),
    };
    return new DataStream<T>(this, node);
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
      ? this.addKeyed(id, 'multi-input', parallelism, inputs as KeyedStream<unknown>[], fn)
      : this.addNode(
          id,
          'multi-input',
          parallelism,
          inputs.map((i) => ({ from: i.node, partition: { type: 'rebalance' } as Partition })),
          () => {
            const ctx = statelessContext<R>();
            return {
              process: (ch, value, emit) => {
                ctx.bind(emit);
                fn(this.inputOf(node, ch), value, ctx);
              },
            };
          },
        );
    return new DataStream<R>(this, node);
  }

  /** The topology as registered with cryo. */
  operators(): Operator[] {
    return this.nodes.map((n) => ({ id: n.id, kind: n.kind, parallelism: n.parallelism }));
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
    this.build();
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
      n.tasks.map((t, i) => (n.source ? this.sourceLoop(n, t, i) : undefined)),
    );
    await Promise.race([finished, Promise.all(loops)]);
    this.stop();
    await Promise.allSettled(loops);
    await Promise.all(this.nodes.flatMap((n) => n.sinks.map((s) => s.settled())));
    await this.server.close();
  }

  stop(): void {
    this.stopped = true;
    for (const wake of this.wakers) wake();
  }

  // --- called by the sidecar server -------------------------------------------------------------------------

  get awaitingRestore(): boolean {
    return this.restoring !== undefined;
  }

  trigger(checkpointId: number, timestamp: number, mode: Mode, incremental = false): void {
    this.highestCheckpointId = Math.max(this.highestCheckpointId, checkpointId);
    if (this.finished) this.triggeredAfterFinish.add(checkpointId);
    const barrier: Barrier = { kind: 'barrier', id: checkpointId, timestamp, mode, incremental };
    for (const node of this.nodes) {
      if (!node.source) continue;
      for (const task of node.tasks) {
        const queue = this.pendingBarriers.get(task) ?? [];
        queue.push(barrier);
        this.pendingBarriers.set(task, queue);
      }
    }
    for (const wake of this.wakers) wake();
  }

  complete(checkpointId: number): void {
    this.lastCheckpointId = Math.max(this.lastCheckpointId, checkpointId);
    this.highestCheckpointId = Math.max(this.highestCheckpointId, checkpointId);
    for (const node of this.nodes) for (const s of node.sinks) s.complete(checkpointId);
    if (this.triggeredAfterFinish.has(checkpointId) && this.options.exitAfterFinalCheckpoint) this.done?.();
  }

  abort(checkpointId: number): void {
    for (const [task, queue] of this.pendingBarriers) {
      this.pendingBarriers.set(
        task,
        queue.filter((b) => b.id !== checkpointId),
      );
    }
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

  // --- building -----------------------------------------------------------------------------------------------

  /** @internal */
  addNode(
    id: string,
    kind: Operator['kind'],
    parallelism: number,
    inputs: Node['inputs'],
    logic: ((subtask: number) => TaskLogic) | undefined,
  ): Node {
    if (this.started || this.nodes.some((n) => n.id === id))
      throw new Error(`operator "${id}" is already defined`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new Error(`operator id "${id}" is not a plain name`);
    if (parallelism < 1 || parallelism > this.maxParallelism)
      throw new Error(`parallelism ${parallelism} of "${id}" is not within 1..${this.maxParallelism}`);
    const node: Node = {
      id,
      kind,
      parallelism,
      inputs,
      ...(logic ? { logic } : {}),
      tasks: [],
      backends: [],
      sinks: [],
      readers: [],
    };
    this.nodes.push(node);
    return node;
  }

  /** @internal */
  addKeyed<R>(
    id: string,
    kind: 'keyed' | 'multi-input',
    parallelism: number,
    inputs: KeyedStream<unknown>[],
    fn: MultiInputFunction<R>,
  ): Node {
    const node = this.addNode(
      id,
      kind,
      parallelism,
      inputs.map((i) => ({ from: i.node, partition: { type: 'key', keyOf: i.keyOf } })),
      (subtask) => {
        const range = keyGroupRange(subtask, parallelism, this.maxParallelism);
        const backend = new KeyedStateBackend(this.maxParallelism, range);
        node.backends[subtask] = backend;
        let emit: (v: unknown) => void = () => undefined;
        const ctx: KeyedContext<R> = {
          get key() {
            return backend.currentKey;
          },
          valueState: (name) => backend.valueState(name),
          mapState: (name) => backend.mapState(name),
          emit: (v) => emit(v),
        };
        return {
          process: (ch, value, e) => {
            const input = this.inputOf(node, ch);
            backend.currentKey = (node.inputs[input]!.partition as { keyOf: (v: unknown) => string }).keyOf(
              value,
            );
            emit = e;
            fn(input, value, ctx);
          },
          snapshot: (barrier) => {
            const snap = backend.snapshot(barrier.incremental);
            return {
              keyed: { parts: snap.parts, confirm: (handles) => backend.confirm(snap.epoch, handles) },
            };
          },
        };
      },
    );
    return node;
  }

  private build(): void {
    if (this.nodes.length === 0) throw new Error('the job has no operators');
    // Channels of a subtask: for each input edge, one per upstream subtask (one for a forward edge).
    const channelBase = this.channelBases;
    for (const node of this.nodes) {
      const bases: number[] = [];
      let n = 0;
      for (const input of node.inputs) {
        bases.push(n);
        if (input.partition.type === 'forward' && input.from.parallelism !== node.parallelism)
          throw new Error(`"${node.id}" forwards from "${input.from.id}" with another parallelism`);
        n += input.partition.type === 'forward' ? 1 : input.from.parallelism;
      }
      channelBase.set(node, [...bases, n]);
      for (let i = 0; i < node.parallelism; i++) {
        const logic = node.logic ? node.logic(i) : this.sourceLogic(node, i);
        node.tasks.push(new Task(node.id, i, node.source ? 0 : n, logic, this.onSnapshot));
      }
    }
    for (const node of this.nodes) {
      const bases = channelBase.get(node)!;
      node.inputs.forEach((input, e) => {
        const base = bases[e]!;
        input.from.tasks.forEach((up, u) => up.outputs.push(this.output(input.partition, node, u, base)));
      });
    }
  }

  private inputOf(node: Node, channel: number): number {
    const bases = this.channelBases.get(node)!;
    let input = 0;
    while (input + 1 < bases.length - 1 && channel >= bases[input + 1]!) input++;
    return input;
  }

  private output(partition: Partition, to: Node, upstream: number, base: number): Output {
    const tasks = to.tasks;
    if (partition.type === 'forward') {
      const target = { task: tasks[upstream]!, channel: base };
      return { route: () => target, all: () => [target] };
    }
    const targets = tasks.map((task) => ({ task, channel: base + upstream }));
    if (partition.type === 'key') {
      return {
        route: (v) =>
          targets[
            subtaskFor(
              keyGroupFor(partition.keyOf(v), this.maxParallelism),
              to.parallelism,
              this.maxParallelism,
            )
          ],
        all: () => targets,
      };
    }
    let next = upstream;
    return { route: () => targets[next++ % targets.length], all: () => targets };
  }

  private sourceLogic(node: Node, subtask: number): TaskLogic {
    return {
      process: () => undefined,
      snapshot: () => ({
        offsets: node.readers[subtask]?.offsets() ?? this.restoredOffsets.get(node.tasks[subtask]!) ?? {},
      }),
    };
  }

  private readonly onSnapshot = (task: Task, barrier: Barrier, snapshot: TaskSnapshot): void => {
    this.server?.report({
      checkpointId: barrier.id,
      operator: task.operator,
      subtask: task.subtask,
      snapshot,
    });
  };

  private async sourceLoop(node: Node, task: Task, subtask: number): Promise<void> {
    const source = node.source!;
    const reader = source.fn.open(subtask, node.parallelism, this.restoredOffsets.get(task) ?? {});
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
          if (this.finished && !this.reportedFinish) {
            this.reportedFinish = true;
            this.options.onFinished?.({ records: this.recordsIn, ms: performance.now() - this.startedAt });
          }
        }
        if (task.finished) await this.sleep(undefined);
        else await this.sleep(pause);
      }
    } finally {
      reader.close();
    }
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

  private readonly log = (message: string): void => {
    (this.options.log ?? ((m: string) => process.stderr.write(`[sidecar] ${m}\n`)))(message);
  };
}

function statelessContext<R>(): KeyedContext<R> & { bind(emit: (v: unknown) => void): void } {
  let emit: (v: unknown) => void = () => undefined;
  const noState = () => {
    throw new Error('state needs a keyed operator: connect KeyedStreams');
  };
  return {
    key: '',
    valueState: noState,
    mapState: noState,
    emit: (v) => emit(v),
    bind: (e) => (emit = e),
  };
}
