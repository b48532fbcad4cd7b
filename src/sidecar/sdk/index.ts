export { StreamJob } from './stream-job.js';
export type { StreamJobOptions } from './stream-job.js';
export { DataStream, KeyedStream } from './stream-api.js';
export type { Context, KeyedContext, KeyedProcessFunction, MultiInputFunction } from './stream-types.js';
export { FileLinesSource } from './file-source.js';
export type { SourceFunction, SourceReader } from './file-source.js';
export { TransactionalFileSink } from './file-sink.js';
export type { TwoPhaseCommitSink, SinkWriter, Transaction } from './file-sink.js';
export type { ValueState, MapState } from './keyed-state.js';
export { keyGroupFor, keyGroupRange, defaultMaxParallelism } from '../../domain/sidecar/key-groups.js';
export {
  SIDECAR_SOCKET_PATH,
  SIDECAR_RESTORE_MARKER,
  PROTOCOL_VERSION,
} from '../../domain/sidecar/protocol.js';
