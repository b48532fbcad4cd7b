import type { ManifestEntry } from '../../domain/manifest.js';
import type { Logger } from '../ports/logger.js';
import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { CheckpointEngine } from '../ports/checkpoint-engine.js';
import type { Clock } from '../ports/clock.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import type { HostInfo } from '../../domain/host-info.js';
import type { HostJournal } from '../ports/host-journal.js';
import type { ImageStore } from '../ports/image-store.js';
import type { ImageChain } from '../ports/image-chain.js';
import type { KeyedLocks } from '../support/keyed-locks.js';
import type { DiskGuard } from '../support/disk-guard.js';
import type { Metrics } from '../ports/metrics.js';
import type { ProcessInspector } from '../ports/process-inspector.js';
import type { ProcessService } from '../process/process-service.js';
import type { RootfsChanges } from '../ports/rootfs-changes.js';
import type { SidecarService } from '../sidecar/sidecar-service.js';
import type { CheckpointLeases } from './leases.js';
import type { PreparedContainers } from './prepared-containers.js';
import type { CheckpointSupport } from './support.js';

/** What the checkpoint use cases are given: ports, and the stores they write. */
export interface CheckpointServiceDeps {
  runtime: ContainerRuntime;
  engine: CheckpointEngine;
  catalog: CheckpointCatalog;
  store: ImageStore;
  rootfs: RootfsChanges;
  clock: Clock;
  /** Pre-flight checks and process checkpoint restores. */
  processes?: ProcessService;
  /** How much memory a container's processes hold: what a dump writes, checked against the free space. */
  inspector?: ProcessInspector;
  host: HostInfo;
  locks?: KeyedLocks;
  /** Operator checkpoints of stream jobs through their sidecar (`application`). */
  sidecar?: SidecarService | undefined;
  /** Where a stop-mode checkpoint records the container it stopped, until it is published. */
  journal?: HostJournal;
  /**
   * Every file of a checkpoint directory (but the manifest) with its size and sha256, as an export lists them;
   * entries of `known` are taken as they are.
   */
  describeEntries?: (dir: string, known?: ManifestEntry[]) => Promise<ManifestEntry[]>;
  /** How long a lazy restore's pages may take, all of them, before its container is killed (default 600). */
  lazyPagesTimeoutSeconds?: number;
  /** How long a container prepared from a disk pre-copy's seed waits for its restore (default 1 h). */
  preparedTtlMs?: number;
  /** Free space for a dump (default: the store's, with no floor). */
  guard?: DiskGuard;
  metrics?: Metrics;
  /** Incremental checkpoints: pages and files left to the parent. */
  chain?: ImageChain;
  /** Where swallowed failures of best-effort steps are logged (default: nowhere). */
  log?: Logger;
}

/** The deps with their defaults filled in, and the state the use cases share. */
export interface CheckpointContext extends CheckpointServiceDeps {
  host: HostInfo;
  guard: DiskGuard;
  metrics: Metrics;
  log: Logger;
  locks: KeyedLocks;
  leases: CheckpointLeases;
  support: CheckpointSupport;
  prepared: PreparedContainers;
}

export function requireSidecar(ctx: CheckpointServiceDeps): SidecarService {
  if (!ctx.sidecar) throw new Error('the sidecar service is not wired');
  return ctx.sidecar;
}

export function requireChain(ctx: CheckpointServiceDeps): ImageChain {
  if (!ctx.chain) throw new Error('incremental checkpoints are not wired: no image chain');
  return ctx.chain;
}
