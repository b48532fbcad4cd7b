import type { EventEmitter } from 'node:events';
import type { ArchiveFormat } from '../../domain/checkpoint.js';
import type { HostInfo } from '../../domain/host-info.js';
import type { Migration } from '../../domain/migration.js';
import type { ArchiveService } from '../archive/archive-service.js';
import type { CheckpointService } from '../checkpoint/checkpoint-service.js';
import type { ServedPages } from '../checkpoint/create.js';
import type { CheckpointEngine } from '../ports/checkpoint-engine.js';
import type { Clock } from '../ports/clock.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import type { HostJournal } from '../ports/host-journal.js';
import type { Logger } from '../ports/logger.js';
import type { Metrics } from '../ports/metrics.js';
import type { MigrationStore } from '../ports/migration-store.js';
import type { PeerConnector } from '../ports/peer-agent.js';
import type { ProcessInspector } from '../ports/process-inspector.js';

export interface MigrationServiceDeps {
  runtime: ContainerRuntime;
  /** This host, as the target's must fit it. */
  host: HostInfo;
  engine: CheckpointEngine;
  checkpoints: CheckpointService;
  archives: ArchiveService;
  connect: PeerConnector;
  clock: Clock;
  /** How long a migration's checkpoint is kept, on both sides, after it was taken. */
  retentionMs: number;
  store: MigrationStore;
  /** The source container's resident memory, to estimate the room its checkpoint needs. */
  inspector: ProcessInspector;
  /** Keeps what a migration needs to settle after a crash (the target's token) until it has ended. */
  journal?: HostJournal;
  /** Pauses between two questions to a target that cannot answer yet; the last one repeats. */
  settleRetryMs?: readonly number[];
  metrics?: Metrics;
  log?: Logger;
  /** Where a post-copy target reaches this host's page server (default: the address the target sees cryo at). */
  pageServerAddress?: string;
  /** Strategy auto picks post-copy from this much resident memory up (default 256 MiB). */
  postCopyThresholdBytes?: number;
  /**
   * How long a target may stay silent while the source waits to learn whether it runs the workload (default 30
   * minutes): past it, the source runs the workload again (a thaw, or a restore) and the migration rolls back.
   */
  settleTimeoutMs?: number;
}

/** What the migrations under way share: the service's dependencies and its state in memory. */
export interface MigrationContext {
  readonly deps: MigrationServiceDeps;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Every migration this host knows, by id. */
  readonly migrations: Map<string, Migration>;
  /** The migration under way of each container, by container id. */
  readonly inFlight: Map<string, string>;
  /** Every change of a migration ('update'), for subscribers. */
  readonly events: EventEmitter;
  /** The journal entry of each migration that has not ended. */
  readonly intents: Map<string, number>;
  /** Migrations whose source waits frozen after its checkpoint, until the target runs the workload or not. */
  readonly heldFrozen: Set<string>;
  /** The page servers of post-copy migrations under way here. */
  readonly pages: Map<string, ServedPages>;
}

/** What the pre-flight settled: whether the target has the image, and how the memory goes. */
export interface MigrationPlan {
  imagePresent: boolean;
  /** How the checkpoint travels: Podman's `--export` layout to a Docker host from a Podman one, cryo's otherwise. */
  format: ArchiveFormat;
  strategy: NonNullable<Migration['strategy']>;
  /** For post-copy: where the target reaches this host's page server. */
  pageServer?: { address: string; port: number };
}

/** Checkpoints made by migrations carry this name prefix, here and on the target (the archive keeps the name). */
export const MIGRATION_CHECKPOINT_PREFIX = 'migration-';

/** The name of the migration's disk pre-copy seed, on both hosts. */
export function seedName(migration: Migration): string {
  return `${MIGRATION_CHECKPOINT_PREFIX}${migration.id}-seed`;
}

/** The migration's checkpoint's name, on both hosts (the archive keeps it). */
export function checkpointName(migration: Migration): string {
  return `${MIGRATION_CHECKPOINT_PREFIX}${migration.id}`;
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
