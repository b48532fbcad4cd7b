import { keyGroupFor, keyGroupRange, subtaskFor } from '../../domain/sidecar/key-groups.js';
import type { Operator } from '../../domain/sidecar/protocol.js';
import type { SourceFunction, SourceReader } from './file-source.js';
import { KeyedStateBackend } from './keyed-state.js';
import type { SinkLogic } from './sink-logic.js';
import type { KeyedContext, MultiInputFunction } from './stream-types.js';
import { Task, type Barrier, type Output, type TaskLogic, type TaskSnapshot } from './task.js';

export type Partition =
  { type: 'forward' } | { type: 'rebalance' } | { type: 'key'; keyOf: (v: unknown) => string };

export interface Node {
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

/** A keyed input of an operator: the upstream node and how its records are keyed. */
export interface KeyedInput {
  node: Node;
  keyOf: (value: unknown) => string;
}

/**
 * The job's operators and the channels between their subtasks: defined through the stream API, then built
 * into tasks once, when the job runs.
 */
export class JobGraph {
  readonly nodes: Node[] = [];
  /** For each operator: the first channel of each input edge, then the channel count. */
  private readonly channelBases = new Map<Node, number[]>();
  private built = false;

  constructor(readonly maxParallelism: number) {}

  addNode(
    id: string,
    kind: Operator['kind'],
    parallelism: number,
    inputs: Node['inputs'],
    logic: ((subtask: number) => TaskLogic) | undefined,
  ): Node {
    if (this.built || this.nodes.some((n) => n.id === id))
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

  /** An operator with keyed state: each subtask owns the state of its key groups. */
  addKeyed<R>(
    id: string,
    kind: 'keyed' | 'multi-input',
    parallelism: number,
    inputs: KeyedInput[],
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

  /** A multi-input operator without state: records are spread over its subtasks. */
  addStateless<R>(id: string, parallelism: number, inputs: Node[], fn: MultiInputFunction<R>): Node {
    const node = this.addNode(
      id,
      'multi-input',
      parallelism,
      inputs.map((from) => ({ from, partition: { type: 'rebalance' } as Partition })),
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
    return node;
  }

  /** The topology as registered with cryo. */
  operators(): Operator[] {
    return this.nodes.map((n) => ({ id: n.id, kind: n.kind, parallelism: n.parallelism }));
  }

  /** Makes every operator's tasks and wires their outputs; sources get `sourceLogic`. */
  build(
    sourceLogic: (node: Node, subtask: number) => TaskLogic,
    onSnapshot: (task: Task, barrier: Barrier, snapshot: TaskSnapshot) => void,
  ): void {
    if (this.nodes.length === 0) throw new Error('the job has no operators');
    this.built = true;
    // Channels of a subtask: for each input edge, one per upstream subtask (one for a forward edge).
    for (const node of this.nodes) {
      const bases: number[] = [];
      let n = 0;
      for (const input of node.inputs) {
        bases.push(n);
        if (input.partition.type === 'forward' && input.from.parallelism !== node.parallelism)
          throw new Error(`"${node.id}" forwards from "${input.from.id}" with another parallelism`);
        n += input.partition.type === 'forward' ? 1 : input.from.parallelism;
      }
      this.channelBases.set(node, [...bases, n]);
      for (let i = 0; i < node.parallelism; i++) {
        const logic = node.logic ? node.logic(i) : sourceLogic(node, i);
        node.tasks.push(new Task(node.id, i, node.source ? 0 : n, logic, onSnapshot));
      }
    }
    for (const node of this.nodes) {
      const bases = this.channelBases.get(node)!;
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
