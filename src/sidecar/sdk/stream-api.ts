import type { TwoPhaseCommitSink } from './file-sink.js';
import type { JobGraph, Node, Partition } from './job-graph.js';
import { SinkLogic } from './sink-logic.js';
import type { KeyedProcessFunction, OperatorOptions } from './stream-types.js';

/** A stream of records between operators. */
export class DataStream<T> {
  constructor(
    protected readonly graph: JobGraph,
    readonly node: Node,
  ) {}

  map<R>(id: string, fn: (value: T) => R, options: OperatorOptions = {}): DataStream<R> {
    return this.flatMap<R>(id, (v) => [fn(v)], options);
  }

  flatMap<R>(id: string, fn: (value: T) => Iterable<R>, options: OperatorOptions = {}): DataStream<R> {
    const parallelism = options.parallelism ?? this.node.parallelism;
    const node = this.graph.addNode(
      id,
      'map',
      parallelism,
      [{ from: this.node, partition: this.edge(parallelism) }],
      () => ({
        process: (_input, value, emit) => {
          for (const r of fn(value as T)) emit(r);
        },
      }),
    );
    return new DataStream<R>(this.graph, node);
  }

  keyBy(keyOf: (value: T) => string): KeyedStream<T> {
    return new KeyedStream<T>(this.graph, this.node, keyOf);
  }

  sink(id: string, sink: TwoPhaseCommitSink<T>, options: OperatorOptions = {}): void {
    const parallelism = options.parallelism ?? 1;
    const node = this.graph.addNode(
      id,
      'sink',
      parallelism,
      [{ from: this.node, partition: this.edge(parallelism) }],
      (subtask) => {
        const logic = new SinkLogic(sink.open(subtask));
        node.sinks[subtask] = logic;
        return logic;
      },
    );
  }

  /** Records go straight to the same subtask when the parallelism stays, and are spread otherwise. */
  private edge(parallelism: number): Partition {
    return parallelism === this.node.parallelism ? { type: 'forward' } : { type: 'rebalance' };
  }
}

/** A stream partitioned by key: each key's records go to the subtask that owns its key group. */
export class KeyedStream<T> extends DataStream<T> {
  constructor(
    graph: JobGraph,
    node: Node,
    readonly keyOf: (value: T) => string,
  ) {
    super(graph, node);
  }

  process<R>(id: string, fn: KeyedProcessFunction<T, R>, options: OperatorOptions = {}): DataStream<R> {
    const node = this.graph.addKeyed<R>(
      id,
      'keyed',
      options.parallelism ?? this.node.parallelism,
      [this.keyedInput()],
      (_input, v, ctx) => fn(v as T, ctx),
    );
    return new DataStream<R>(this.graph, node);
  }

  keyedInput(): { node: Node; keyOf: (value: unknown) => string } {
    return { node: this.node, keyOf: this.keyOf as (value: unknown) => string };
  }
}
