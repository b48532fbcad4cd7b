import type { Assignment, Mode, Operator } from '../../domain/sidecar/protocol.js';
import type { TaskSnapshot } from './task.js';

/** One subtask's snapshot for a checkpoint, as the job reports it to the sidecar server. */
export interface SnapshotReport {
  checkpointId: number;
  operator: string;
  subtask: number;
  snapshot: TaskSnapshot;
}

/** One restored state file, already checked against its handle. */
export type RestoredState = Map<string, Buffer>;

/** What the sidecar server drives: the job that StreamJob runs, seen from the protocol. */
export interface SidecarJob {
  readonly name: string;
  readonly maxParallelism: number;
  readonly finished: boolean;
  readonly highestCheckpointId: number;
  readonly committedCheckpointId: number;
  readonly awaitingRestore: boolean;
  operators(): Operator[];
  trigger(checkpointId: number, timestamp: number, mode: Mode, incremental?: boolean): void;
  complete(checkpointId: number): void;
  abort(checkpointId: number): void;
  restore(checkpointId: number, assignments: Assignment[], files: RestoredState): void;
}
