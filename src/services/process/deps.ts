import type { CheckpointCatalog } from '../checkpoint-catalog.js';
import type { CheckpointEngine } from '../checkpoint-engine.js';
import type { Clock } from '../clock.js';
import type { ContainerRuntime } from '../container-runtime.js';
import type { ImageStore } from '../image-store.js';
import type { KeyedLocks } from '../keyed-locks.js';
import type { Metrics } from '../metrics.js';
import type { ProcessInspector } from '../process-inspector.js';

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
