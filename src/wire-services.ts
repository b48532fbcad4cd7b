import { ContentImageChain } from './adapters/chain/content-image-chain.js';
import { TarArchiveCodec } from './adapters/archive/tar-archive-codec.js';
import type { RegistryConnector } from './services/ports/checkpoint-registry.js';
import { RegistryService } from './services/registry/registry-service.js';
import type { HostInfo } from './domain/host-info.js';
import type { Logger } from './services/ports/logger.js';
import { CronerCron } from './adapters/cron/croner-cron.js';
import type { Db } from './adapters/store/database.js';
import { SqliteCheckpointCatalog } from './adapters/store/sqlite-checkpoint-catalog.js';
import { SqliteBlobLocations } from './adapters/store/sqlite-blob-locations.js';
import { SqliteMigrationStore } from './adapters/store/sqlite-migration-store.js';
import { SqliteScheduleStore } from './adapters/store/sqlite-schedule-store.js';
import { ArchiveService } from './services/archive/archive-service.js';
import { CheckpointService } from './services/checkpoint/checkpoint-service.js';
import type { CheckpointEngine } from './services/ports/checkpoint-engine.js';
import type { Clock } from './services/ports/clock.js';
import type { ContainerRuntime } from './services/ports/container-runtime.js';
import { DiskGuard, type DiskFloor } from './services/support/disk-guard.js';
import { HealthService } from './services/health/health-service.js';
import type { Metrics } from './services/ports/metrics.js';
import { HostService } from './services/host/host-service.js';
import type { HostJournal } from './services/ports/host-journal.js';
import type { ImageStore } from './services/ports/image-store.js';
import { ProcessService } from './services/process/process-service.js';
import type { ProcessInspector } from './services/ports/process-inspector.js';
import { MigrationService } from './services/migration/migration-service.js';
import type { PeerConnector } from './services/ports/peer-agent.js';
import type { RootfsChanges } from './services/ports/rootfs-changes.js';
import { ScheduleService } from './services/schedule/schedule-service.js';
import {
  systemCoordinatorClock,
  type CoordinatorOptions,
} from './services/sidecar/checkpoint-coordinator.js';
import type { SidecarConnector } from './services/ports/sidecar-connector.js';
import type { LayerEncryption } from './services/ports/layer-encryption.js';
import type { ForeignImages } from './services/ports/foreign-images.js';
import { SidecarService } from './services/sidecar/sidecar-service.js';

export interface ServiceDeps {
  runtime: ContainerRuntime;
  /** This host (kernel, architecture, name), as manifests record it and peers must fit it. */
  host: HostInfo;
  engine: CheckpointEngine;
  rootfs: RootfsChanges;
  inspector: ProcessInspector;
  db: Db;
  store: ImageStore;
  connect: PeerConnector;
  clock: Clock;
  dataDir: string;
  maxImportBytes: number;
  /** What checkpoints and imports must leave free in the data directory (default: nothing). */
  diskFloor?: DiskFloor;
  /** Where the use cases report durations and outcomes (default: nowhere). */
  metrics?: Metrics;
  /** What crosses between Docker's checkpoints and Podman's: archives and images of the other engine. */
  foreign: ForeignImages;
  /** Where background work and swallowed failures are logged (default: nowhere). */
  log?: Logger;
  /** Reaches OCI registries, for push and pull (default: none, and those are refused). */
  registries?: RegistryConnector;
  /** Encrypts pushed layers, opens pulled ones (default: none: pushes are plain, encrypted pulls refused). */
  encryption?: LayerEncryption;
  scheduleGraceMs: number;
  migrationRetentionMs: number;
  /** How long a lazy restore's pages may take before its container is killed (default 600 s). */
  lazyPagesTimeoutSeconds?: number;
  /** Where a post-copy target reaches this host's page server (default: the address the target sees). */
  pageServerAddress?: string;
  /** Pauses between two questions to a migration target that cannot answer yet (default: 1 s rising to 30 s). */
  migrationSettleRetryMs?: readonly number[];
  /** How long such a target may stay silent before the source runs the workload again (default 30 minutes). */
  migrationSettleTimeoutMs?: number;
  /** Where changes outside the data directory are recorded until put back (crash recovery). */
  journal?: HostJournal;
  /** Reaches stream jobs' sidecars; without it, `application` checkpoints are not offered. */
  sidecar?: SidecarConnector;
  sidecarCoordinator?: Partial<CoordinatorOptions>;
}

export type Services = ReturnType<typeof createServices>;

/** Builds every use case on the given adapters: the real ones in the server, fakes in unit tests. */
export function createServices(d: ServiceDeps) {
  const catalog = new SqliteCheckpointCatalog(d.db);
  const chain = new ContentImageChain();
  const guard = new DiskGuard(d.store, d.diskFloor);
  const processes = new ProcessService({ ...d, catalog });
  const sidecar = d.sidecar
    ? new SidecarService({
        connector: d.sidecar,
        dataDir: d.dataDir,
        clock: systemCoordinatorClock,
        ...(d.log ? { log: d.log } : {}),
        ...(d.sidecarCoordinator ? { coordinator: d.sidecarCoordinator } : {}),
      })
    : undefined;
  const codec = new TarArchiveCodec();
  const checkpoints = new CheckpointService({
    ...d,
    catalog,
    processes,
    sidecar,
    describeEntries: (dir, known) => codec.describe(dir, known),
    chain,
    guard,
    metrics: d.metrics,
  });
  const archives = new ArchiveService({
    checkpoints,
    catalog,
    store: d.store,
    codec,
    clock: d.clock,
    maxImportBytes: d.maxImportBytes,
    guard,
    metrics: d.metrics,
    chain,
    foreign: d.foreign,
    ...(d.log ? { log: d.log } : {}),
  });
  const registry = new RegistryService({
    checkpoints,
    archives,
    catalog,
    connect:
      d.registries ??
      (async () => {
        throw new Error('no registry connector');
      }),
    maxImportBytes: d.maxImportBytes,
    ...(d.encryption ? { encryption: d.encryption } : {}),
    locations: new SqliteBlobLocations(d.db),
    ...(d.log ? { log: d.log } : {}),
  });
  const schedules = new ScheduleService({
    store: new SqliteScheduleStore(d.db),
    checkpoints,
    runtime: d.runtime,
    cron: new CronerCron(),
    clock: d.clock,
    catchUpGraceMs: d.scheduleGraceMs,
    metrics: d.metrics,
    registry,
    ...(d.log ? { log: d.log } : {}),
  });
  const migrations = new MigrationService({
    runtime: d.runtime,
    host: d.host,
    engine: d.engine,
    checkpoints,
    archives,
    connect: d.connect,
    clock: d.clock,
    retentionMs: d.migrationRetentionMs,
    store: new SqliteMigrationStore(d.db),
    inspector: d.inspector,
    journal: d.journal,
    settleRetryMs: d.migrationSettleRetryMs,
    ...(d.log ? { log: d.log } : {}),
    ...(d.migrationSettleTimeoutMs !== undefined ? { settleTimeoutMs: d.migrationSettleTimeoutMs } : {}),
    metrics: d.metrics,
    ...(d.pageServerAddress ? { pageServerAddress: d.pageServerAddress } : {}),
  });
  const host = new HostService(d.runtime, d.engine, guard, d.host);
  const health = new HealthService(d.runtime, d.engine);
  return { catalog, checkpoints, processes, archives, schedules, migrations, host, health, registry };
}
