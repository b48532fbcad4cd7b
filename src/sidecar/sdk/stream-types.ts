import type { MapState, ValueState } from './keyed-state.js';

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

export interface OperatorOptions {
  parallelism?: number;
}
