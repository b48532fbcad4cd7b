import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { CheckpointEngine } from '../ports/checkpoint-engine.js';
import type { Clock } from '../ports/clock.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import type { ImageStore } from '../ports/image-store.js';
import type { KeyedLocks } from '../support/keyed-locks.js';
import type { Metrics } from '../ports/metrics.js';
import type { ProcessInspector } from '../ports/process-inspector.js';

export interface ProcessServiceDeps {
  inspector: ProcessInspector;
  engine: CheckpointEngine;
  runtime: ContainerRuntime;
  catalog: CheckpointCatalog;
  store: ImageStore;
  clock: Clock;
  locks?: KeyedLocks;
  metrics?: Metrics;
}

/** The deps with the locks that process checkpoints and restores share. */
export type ProcessContext = ProcessServiceDeps & { locks: KeyedLocks };
