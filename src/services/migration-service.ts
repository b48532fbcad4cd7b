import { EventEmitter } from 'node:events';
import { Transform } from 'node:stream';
import {
  AppError,
  ContainerNotFoundError,
  ContainerNotRunningError,
  ErrorCode,
  InsufficientSpaceError,
  MigrationInProgressError,
  MigrationNotFoundError,
} from '../domain/errors/index.js';
import { requireHostFits } from '../domain/host-fit.js';
import type { CreateMigrationBody, Migration, MigrationPhaseName } from '../domain/migration.js';
import type { ArchiveService } from './archive-service.js';
import type { CheckpointService } from './checkpoint-service.js';
import { newId } from './ids.js';
import type { CheckpointEngine } from './checkpoint-engine.js';
import type { Clock } from './clock.js';
import type { ContainerInfo, ContainerRuntime } from './container-runtime.js';
import { localHost } from './host-info.js';
import type { MigrationStore } from './migration-store.js';
import type { PeerAgent, PeerConnector } from './peer-agent.js';
import type { ProcessInspector } from './process-inspector.js';

export interface MigrationServiceDeps {
  runtime: ContainerRuntime;
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
}

/** Checkpoints made by migrations carry this name prefix, here and on the target (the archive keeps the name). */
export const MIGRATION_CHECKPOINT_PREFIX = 'migration-';

/** Room a checkpoint needs on the target, estimated from the container's resident memory. */
const SPACE_OVERHEAD_BYTES = 64 * 1024 * 1024;

/** Moves a running container to another cryo agent; a failure after the checkpoint rolls it back here. */
export class MigrationService {
  private readonly migrations = new Map<string, Migration>();
  private readonly inFlight = new Map<string, string>();
  private readonly events = new EventEmitter();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly deps: MigrationServiceDeps) {
    this.events.setMaxListeners(0);
    for (const m of deps.store.list()) {
      // A migration still running when cryo stopped did not finish; its checkpoint is kept on this side.
      if (m.status === 'running') {
        m.status = 'failed';
        m.endedAt = m.endedAt ?? new Date(deps.clock.now()).toISOString();
        m.error = m.error ?? {
          phase: m.phases.at(-1)?.name ?? 'preflight',
          code: 'INTERRUPTED',
          message: 'cryo stopped during the migration',
        };
        deps.store.save(m);
      }
      this.migrations.set(m.id, m);
    }
  }

  /** Starts the hourly removal of migration checkpoints older than the retention period. */
  startSweeper(): void {
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), 3_600_000);
    this.sweeper.unref();
    void this.sweep().catch(() => undefined);
  }

  stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  /** Removes migration checkpoints (sent or received) past the retention period, unless in use. */
  async sweep(): Promise<string[]> {
    const { checkpoints, clock, retentionMs } = this.deps;
    const removed: string[] = [];
    for (const c of checkpoints.list()) {
      if (!c.name.startsWith(MIGRATION_CHECKPOINT_PREFIX)) continue;
      if (Date.parse(c.createdAt) > clock.now() - retentionMs || checkpoints.isInUse(c.id)) continue;
      await checkpoints.remove(c.id).then(
        () => removed.push(c.id),
        () => undefined,
      );
    }
    return removed;
  }

  list(): Migration[] {
    return [...this.migrations.values()];
  }

  get(id: string): Migration {
    const m = this.migrations.get(id);
    if (!m) throw new MigrationNotFoundError(id);
    return m;
  }

  /** Calls `listener` with every change of the migration until it ends; returns the unsubscribe function. */
  subscribe(id: string, listener: (m: Migration) => void): () => void {
    this.get(id);
    const handler = (m: Migration) => {
      if (m.id === id) listener(m);
    };
    this.events.on('update', handler);
    return () => this.events.off('update', handler);
  }

  /** Checks both sides (synchronously, so that bad targets fail the request), then migrates in the background. */
  async start(ref: string, body: CreateMigrationBody): Promise<Migration> {
    const { runtime, clock } = this.deps;
    const container = await runtime.inspect(ref);
    if (!container) throw new ContainerNotFoundError(ref);
    if (!container.running || container.paused) throw new ContainerNotRunningError(ref, container.state);
    const busy = this.inFlight.get(container.id);
    if (busy) throw new MigrationInProgressError(container.name, busy);

    const now = clock.now();
    const migration: Migration = {
      id: newId(now),
      container: { id: container.id, name: container.name },
      target: body.target,
      status: 'running',
      phases: [],
      startedAt: new Date(now).toISOString(),
      bytesSent: 0,
    };
    this.inFlight.set(container.id, migration.id);
    this.migrations.set(migration.id, migration);
    const peer = this.deps.connect(body.target, body.targetToken);
    let imagePresent: boolean;
    try {
      imagePresent = await this.phase(migration, 'preflight', () => this.preflight(peer, container));
    } catch (err) {
      this.end(migration, 'failed', 'preflight', err);
      throw err;
    }
    void this.run(migration, container, peer, body, imagePresent);
    return migration;
  }

  private async preflight(peer: PeerAgent, container: ContainerInfo): Promise<boolean> {
    const target = await peer.host();
    const criuVersion = await this.deps.engine.version();
    requireHostFits({ ...localHost(), criuVersion }, target);
    const needed = (await this.deps.inspector.residentBytes(container.pid)) + SPACE_OVERHEAD_BYTES;
    if (target.freeBytes < needed) throw new InsufficientSpaceError(needed, target.freeBytes);
    const layers = await this.deps.runtime.imageLayers(container.imageId);
    return peer.hasImage({ id: container.imageId, ref: container.image, ...(layers ? { layers } : {}) });
  }

  private async run(
    migration: Migration,
    container: ContainerInfo,
    peer: PeerAgent,
    body: CreateMigrationBody,
    imagePresent: boolean,
  ): Promise<void> {
    const { runtime, checkpoints, archives, clock } = this.deps;
    try {
      if (imagePresent) this.markSkipped(migration, 'image', 'the target has the image');
      else
        await this.phase(migration, 'image', async () =>
          peer.loadImage(await runtime.saveImage(container.imageId)),
        );
    } catch (err) {
      this.end(migration, 'failed', 'image', err);
      return;
    }

    let frozenAt = 0;
    let failedIn: MigrationPhaseName = 'checkpoint';
    try {
      frozenAt = clock.now();
      const checkpoint = await this.phase(migration, 'checkpoint', () =>
        checkpoints.create(
          container.id,
          { name: `migration-${migration.id}`, leaveRunning: false, includeVolumes: true },
          { hashEntries: true },
        ),
      );
      migration.checkpointId = checkpoint.id;
      failedIn = 'stream';
      const imported = await this.phase(migration, 'stream', async () => {
        const archive = await archives.export(checkpoint.id, 'none');
        const counted = archive.stream.pipe(
          new Transform({
            transform: (chunk: Buffer, _enc, cb) => {
              migration.bytesSent += chunk.length;
              cb(null, chunk);
            },
          }),
        );
        return peer.importArchive(counted);
      });
      migration.targetCheckpointId = imported.id;
      failedIn = 'restore';
      const restored = await this.phase(migration, 'restore', () =>
        peer.restore(imported.id, body.name ?? container.name),
      );
      migration.targetContainer = restored.container;
      migration.downtimeMs = clock.now() - frozenAt;
      failedIn = 'finish';
      await this.phase(migration, 'finish', async () => {
        if (!body.keepSource) await runtime.remove(container.id);
      });
      this.end(migration, 'succeeded');
    } catch (err) {
      if (!migration.checkpointId) {
        this.end(migration, 'failed', failedIn, err);
        return;
      }
      await this.rollback(migration, peer, failedIn, err);
    }
  }

  /** Undoes the completed steps in reverse: the target's copy goes, the source container comes back. */
  private async rollback(
    migration: Migration,
    peer: PeerAgent,
    failedIn: MigrationPhaseName,
    cause: unknown,
  ): Promise<void> {
    try {
      await this.phase(migration, 'rollback', async () => {
        if (migration.targetCheckpointId)
          await peer.deleteCheckpoint(migration.targetCheckpointId).catch(() => undefined);
        await this.deps.checkpoints.restore(migration.checkpointId!, { ports: 'free' });
      });
      this.end(migration, 'rolled_back', failedIn, cause);
    } catch (err) {
      this.end(
        migration,
        'failed',
        failedIn,
        new Error(`${message(cause)}; then the rollback failed: ${message(err)}`),
      );
    }
  }

  private async phase<T>(migration: Migration, name: MigrationPhaseName, fn: () => Promise<T>): Promise<T> {
    const started = this.deps.clock.now();
    const phase = { name, startedAt: new Date(started).toISOString(), status: 'running' as const };
    migration.phases.push(phase);
    this.emit(migration);
    try {
      const result = await fn();
      Object.assign(phase, { status: 'done', ms: this.deps.clock.now() - started });
      return result;
    } catch (err) {
      Object.assign(phase, { status: 'failed', ms: this.deps.clock.now() - started, detail: message(err) });
      throw err;
    } finally {
      this.emit(migration);
    }
  }

  private markSkipped(migration: Migration, name: MigrationPhaseName, detail: string): void {
    migration.phases.push({
      name,
      startedAt: new Date(this.deps.clock.now()).toISOString(),
      ms: 0,
      status: 'skipped',
      detail,
    });
    this.emit(migration);
  }

  private end(
    migration: Migration,
    status: Migration['status'],
    phase?: MigrationPhaseName,
    err?: unknown,
  ): void {
    migration.status = status;
    migration.endedAt = new Date(this.deps.clock.now()).toISOString();
    if (phase && err !== undefined) {
      migration.error = {
        phase,
        code: err instanceof AppError ? err.code : ErrorCode.INTERNAL_ERROR,
        message: message(err),
      };
    }
    this.inFlight.delete(migration.container.id);
    this.emit(migration);
  }

  private emit(migration: Migration): void {
    this.deps.store.save(migration);
    this.events.emit('update', structuredClone(migration));
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
