import { EventEmitter } from 'node:events';
import { DEADLINES } from '../defaults.js';
import { createServer, type AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Checkpoint, RestoredContainer } from '../domain/checkpoint.js';
import {
  ContainerNotFoundError,
  ContainerNotRunningError,
  DeadlineExceededError,
  ErrorCode,
  InsufficientSpaceError,
  MigrationInProgressError,
  MigrationInterruptedError,
  MigrationNotFoundError,
  PostCopyUnavailableError,
  TargetError,
} from '../domain/errors/index.js';
import { HostIntentKind } from '../domain/host-intent.js';
import { requireHostFits } from '../domain/host-fit.js';
import type {
  CreateMigrationBody,
  HostInfoReport,
  Migration,
  MigrationPhaseName,
  MigrationStrategy,
} from '../domain/migration.js';
import type { ArchiveService } from './archive-service.js';
import type { CheckpointService, CreateCheckpointInternals } from './checkpoint-service.js';
import type { ServedPages } from './checkpoint/create.js';
import { newId } from './ids.js';
import type { CheckpointEngine } from './checkpoint-engine.js';
import type { Clock } from './clock.js';
import type { ContainerInfo, ContainerRuntime } from './container-runtime.js';
import { localHost } from './host-info.js';
import type { HostJournal } from './host-journal.js';
import { errorCode, NO_METRICS, type Metrics } from './metrics.js';
import { hangUp } from './hang-up.js';
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
  /** Keeps what a migration needs to settle after a crash (the target's token) until it has ended. */
  journal?: HostJournal;
  /** Pauses between two questions to a target that cannot answer yet; the last one repeats. */
  settleRetryMs?: readonly number[];
  metrics?: Metrics;
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

/** Below this, auto keeps stop-and-copy: the pages of a small container cost less than post-copy's fixed steps. */
const POST_COPY_THRESHOLD_BYTES = 256 * 1024 * 1024;

/** How often a post-copy source asks whether the target has all its pages. */
const PAGES_POLL_MS = 200;

/** What the pre-flight settled: whether the target has the image, and how the memory goes. */
interface MigrationPlan {
  imagePresent: boolean;
  strategy: NonNullable<Migration['strategy']>;
  /** For post-copy: where the target reaches this host's page server. */
  pageServer?: { address: string; port: number };
}

/** Checkpoints made by migrations carry this name prefix, here and on the target (the archive keeps the name). */
export const MIGRATION_CHECKPOINT_PREFIX = 'migration-';

/** Room a checkpoint needs on the target, estimated from the container's resident memory. */
const SPACE_OVERHEAD_BYTES = 64 * 1024 * 1024;

const SETTLE_RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/** A restore of the target's copy still holds it, or its pages still come: ask again once that has ended. */
class TargetStillRestoring extends Error {}

/** Moves a running container to another cryo agent; a failure after the checkpoint rolls it back here. */
export class MigrationService {
  private readonly migrations = new Map<string, Migration>();
  private readonly inFlight = new Map<string, string>();
  private readonly events = new EventEmitter();
  /** The journal entry of each migration that has not ended. */
  private readonly intents = new Map<string, number>();
  /** Migrations whose source waits frozen after its checkpoint, until the target runs the workload or not. */
  private readonly held = new Set<string>();
  /** The page servers of post-copy migrations under way here. */
  private readonly pages = new Map<string, ServedPages>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly deps: MigrationServiceDeps) {
    this.events.setMaxListeners(0);
    const open = new Set(this.openIntents().map((e) => e.intent.migrationId));
    for (const m of deps.store.list()) {
      // Without its journal entry (none before the journal kept migrations), an interrupted one cannot settle.
      if (m.status === 'running' && !open.has(m.id)) {
        m.status = 'failed';
        m.endedAt = m.endedAt ?? new Date(deps.clock.now()).toISOString();
        m.error = m.error ?? {
          phase: m.phases.at(-1)?.name ?? 'preflight',
          code: ErrorCode.MIGRATION_INTERRUPTED,
          message: 'cryo stopped during the migration',
        };
        deps.store.save(m);
      }
      this.migrations.set(m.id, m);
    }
  }

  /**
   * Settles in the background every migration away from here that a crash interrupted: the target says whether
   * it runs the workload (then the source goes), else the source runs it again. Call it after host recovery.
   */
  resumeInterrupted(): void {
    const open = new Set(this.openIntents().map((e) => e.intent.migrationId));
    for (const m of this.migrations.values()) {
      // A source still frozen for a migration that has ended (cryo died while it let the source go).
      if (!open.has(m.id) && this.heldEntries(m.id).length > 0)
        void this.endHold(m, m.status === 'succeeded' ? 'stop' : 'thaw').catch(() => undefined);
    }
    for (const { id, intent } of this.openIntents()) {
      const m = this.migrations.get(intent.migrationId);
      if (m?.status !== 'running') {
        this.deps.journal?.end(id);
        continue;
      }
      this.intents.set(m.id, id);
      this.inFlight.set(m.container.id, m.id);
      this.metrics.inFlight('migration', 1);
      const peer = this.deps.connect(m.target, intent.targetToken);
      void this.resume(m, peer, intent.keepSource);
    }
  }

  private openIntents() {
    return (this.deps.journal?.pending() ?? []).flatMap((e) =>
      e.intent.kind === HostIntentKind.MIGRATION_SOURCE ? [{ id: e.id, intent: e.intent }] : [],
    );
  }

  private async resume(m: Migration, peer: PeerAgent, keepSource: boolean): Promise<void> {
    const failedIn = m.phases.at(-1)?.name ?? 'checkpoint';
    const checkpoint = this.deps.checkpoints.list({ name: checkpointName(m) })[0];
    if (!checkpoint) {
      // Host recovery has started the container again (its stop-mode checkpoint was never published), or it
      // waits frozen where its dump left it, and runs on from there.
      try {
        await this.endHold(m, 'thaw');
        await this.dropPreCopy(m, peer);
      } catch (err) {
        this.failAfter(
          m,
          failedIn,
          new MigrationInterruptedError('its checkpoint was not complete'),
          'the thaw',
          err,
        );
        return;
      }
      this.end(m, 'failed', failedIn, new MigrationInterruptedError('its checkpoint was not complete'));
      return;
    }
    m.checkpointId = checkpoint.id;
    await this.settle(
      m,
      peer,
      keepSource,
      failedIn,
      new MigrationInterruptedError('it was settled after the restart'),
    );
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
      // Only the catalog's mark says a checkpoint is a migration's: a user's may have any name.
      if (!c.migration) continue;
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
    this.metrics.inFlight('migration', 1);
    const peer = this.deps.connect(body.target, body.targetToken);
    let plan: MigrationPlan;
    try {
      plan = await this.phase(migration, 'preflight', () => this.preflight(peer, container, body));
    } catch (err) {
      this.end(migration, 'failed', 'preflight', err);
      throw err;
    }
    migration.strategy = plan.strategy;
    this.emit(migration);
    if (this.deps.journal)
      this.intents.set(
        migration.id,
        this.deps.journal.begin({
          kind: HostIntentKind.MIGRATION_SOURCE,
          migrationId: migration.id,
          targetToken: body.targetToken,
          keepSource: body.keepSource,
        }),
      );
    void this.run(migration, container, peer, body, plan);
    return migration;
  }

  private async preflight(
    peer: PeerAgent,
    container: ContainerInfo,
    body: CreateMigrationBody,
  ): Promise<MigrationPlan> {
    const target = await peer.host();
    const criuVersion = await this.deps.engine.version();
    requireHostFits({ ...localHost(), criuVersion }, target);
    const resident = await this.deps.inspector.residentBytes(container.pid);
    const needed = resident + SPACE_OVERHEAD_BYTES;
    if (target.freeBytes - (target.minFreeBytes ?? 0) < needed)
      throw new InsufficientSpaceError(needed, target.freeBytes, target.minFreeBytes ?? 0);
    const plan = await this.chooseStrategy(body.strategy, container, target, resident);
    const layers = await this.deps.runtime.imageLayers(container.imageId);
    const imagePresent = await peer.hasImage({
      id: container.imageId,
      ref: container.image,
      ...(layers ? { layers } : {}),
    });
    return { ...plan, imagePresent };
  }

  /** Post-copy where asked and both hosts and the container can; auto also wants enough memory to be worth it. */
  private async chooseStrategy(
    requested: MigrationStrategy,
    container: ContainerInfo,
    target: HostInfoReport,
    resident: number,
  ): Promise<Omit<MigrationPlan, 'imagePresent'>> {
    if (requested === 'stop-and-copy') return { strategy: { requested, used: 'stop-and-copy' } };
    const reasons: string[] = [];
    const here = await this.deps.engine.postCopySupport();
    if (!here.ok) reasons.push(`this host: ${here.reason ?? 'no lazy pages'}`);
    if (!target.postCopy?.ok)
      reasons.push(`the target: ${target.postCopy?.reason ?? 'its cryo knows no post-copy'}`);
    if (!(await this.deps.runtime.canHoldFrozen(container.id)))
      reasons.push("the container is not dumped through runc here (Docker's checkpoint API path)");
    const address = normalizeAddress(this.deps.pageServerAddress ?? target.peerAddress);
    const port = address === undefined ? undefined : await freePort(address).catch(() => undefined);
    if (port === undefined)
      reasons.push(
        `no page server can listen here at ${address ?? 'the address the target sees'}: set CRYO_PAGE_SERVER_ADDRESS to an address of this host that the target reaches`,
      );
    if (requested === 'post-copy' && reasons.length > 0) throw new PostCopyUnavailableError(reasons);
    const threshold = this.deps.postCopyThresholdBytes ?? POST_COPY_THRESHOLD_BYTES;
    if (requested === 'auto' && reasons.length === 0 && resident < threshold)
      reasons.push(
        `its memory (${mib(resident)} MiB resident) is under the post-copy threshold (${mib(threshold)} MiB)`,
      );
    if (reasons.length > 0)
      return { strategy: { requested, used: 'stop-and-copy', fallback: reasons.join('; ') } };
    return { strategy: { requested, used: 'post-copy' }, pageServer: { address: address!, port: port! } };
  }

  private async run(
    migration: Migration,
    container: ContainerInfo,
    peer: PeerAgent,
    body: CreateMigrationBody,
    plan: MigrationPlan,
  ): Promise<void> {
    const { runtime, checkpoints, clock } = this.deps;
    try {
      if (plan.imagePresent) this.markSkipped(migration, 'image', 'the target has the image');
      else
        await this.phase(migration, 'image', async () =>
          peer.loadImage(await runtime.saveImage(container.imageId)),
        );
    } catch (err) {
      this.end(migration, 'failed', 'image', err);
      return;
    }

    // Where it can, the source stays frozen after its dump instead of stopping: Docker's handling of the exit
    // leaves the downtime, and a rollback before the target runs it is a thaw.
    let hold: boolean;
    let diskSince: CreateCheckpointInternals['diskSince'];
    try {
      hold = await runtime.canHoldFrozen(container.id);
      if (body.diskPreCopy && !hold)
        this.markSkipped(
          migration,
          'precopy',
          "the container is not dumped through runc here (Docker's checkpoint API path)",
        );
      else if (body.diskPreCopy)
        diskSince = await this.phase(migration, 'precopy', () =>
          this.preCopy(migration, container, peer, body),
        );
    } catch (err) {
      await this.dropPreCopy(migration, peer);
      this.end(migration, 'failed', 'precopy', err);
      return;
    }

    let frozenAt = 0;
    let failedIn: MigrationPhaseName = 'checkpoint';
    try {
      // Post-copy: the memory pages stay in the frozen tasks, served to the target from a page server here.
      const { pageServer } = plan;
      if (pageServer) migration.pageServer = pageServer;
      const checkpoint = await this.phase(migration, 'checkpoint', () =>
        checkpoints.create(
          container.id,
          { name: checkpointName(migration), leaveRunning: hold, includeVolumes: true },
          {
            hashEntries: true,
            migration: { id: migration.id },
            onFreeze: () => (frozenAt = clock.now()),
            ...(hold ? { heldBy: migration.id } : {}),
            ...(diskSince ? { diskSince } : {}),
            ...(pageServer
              ? {
                  lazyPages: {
                    server: pageServer,
                    onPages: (pages: ServedPages) => this.pages.set(migration.id, pages),
                  },
                }
              : {}),
          },
        ),
      );
      if (hold) this.held.add(migration.id);
      migration.checkpointId = checkpoint.id;
      migration.bytesTotal = (migration.precopy?.bytes ?? 0) + checkpoint.sizeBytes;
      failedIn = 'stream';
      const imported = await this.phase(migration, 'stream', () => this.send(migration, checkpoint.id, peer));
      migration.targetCheckpointId = imported.id;
      failedIn = 'restore';
      const restored = await this.phase(migration, 'restore', () =>
        peer.restore(imported.id, body.name ?? container.name, {
          lazyPages: migration.pageServer,
          prepared: migration.precopy?.preparedContainer,
        }),
      );
      migration.downtimeMs = clock.now() - frozenAt;
      if (migration.pageServer) {
        // It runs there, but needs the pages here until the last one has arrived.
        failedIn = 'pages';
        await this.awaitPages(migration, peer, body.keepSource);
        return;
      }
      migration.targetContainer = restored.container;
    } catch (err) {
      if (!migration.checkpointId) {
        await this.dropPreCopy(migration, peer);
        this.end(migration, 'failed', failedIn, err);
        return;
      }
      await this.settle(migration, peer, body.keepSource, failedIn, err);
      return;
    }
    await this.finish(migration, peer, body.keepSource);
  }

  /**
   * Disk pre-copy, while the container runs: its root-filesystem changes and volumes go to the target as a seed
   * checkpoint, and the target creates and fills the container from it. The checkpoint then sends what changed.
   */
  private async preCopy(
    migration: Migration,
    container: ContainerInfo,
    peer: PeerAgent,
    body: CreateMigrationBody,
  ): Promise<NonNullable<CreateCheckpointInternals['diskSince']>> {
    const name = seedName(migration);
    const seed = await this.deps.checkpoints.createDiskSeed(container.id, name, { id: migration.id });
    migration.precopy = { checkpointId: seed.checkpoint.id, bytes: seed.checkpoint.sizeBytes };
    migration.bytesTotal = seed.checkpoint.sizeBytes;
    this.emit(migration);
    const there = await this.send(migration, seed.checkpoint.id, peer);
    migration.precopy.targetCheckpointId = there.id;
    this.emit(migration);
    const prepared = await peer.prepare(there.id, body.name ?? container.name);
    migration.precopy.preparedContainer = prepared.container.id;
    return { seed: name, index: seed.index };
  }

  /** Streams a checkpoint into the target's import, counting the bytes sent. */
  private async send(migration: Migration, checkpointId: string, peer: PeerAgent): Promise<Checkpoint> {
    const archive = await this.deps.archives.export(checkpointId, 'none');
    const counted = archive.stream.pipe(
      new Transform({
        transform: (chunk: Buffer, _enc, cb) => {
          migration.bytesSent += chunk.length;
          cb(null, chunk);
        },
      }),
    );
    try {
      return await peer.importArchive(counted, migration.id);
    } finally {
      // Ends the export's hold on the checkpoint even when the target never read the stream.
      archive.stream.destroy();
    }
  }

  /**
   * Best effort: a disk pre-copy's seed goes from both hosts (on the target, with the container prepared from it
   * unless a restore has used it); after a success, the target's changes checkpoint too, which nothing restores.
   */
  private async dropPreCopy(migration: Migration, peer: PeerAgent, succeeded = false): Promise<void> {
    const precopy = migration.precopy;
    if (!precopy) return;
    const there = [precopy.targetCheckpointId, succeeded ? migration.targetCheckpointId : undefined];
    for (const id of there) if (id) await peer.deleteCheckpoint(id).catch(() => undefined);
    await this.deps.checkpoints.remove(precopy.checkpointId).catch(() => undefined);
  }

  /**
   * Post-copy after the target's restore: the target runs the workload while its pages come from here. Once the
   * target has them all, the source goes; if the target lost its container for want of pages, the source thaws.
   */
  private async awaitPages(migration: Migration, peer: PeerAgent, keepSource: boolean): Promise<void> {
    // A failure here is settled as any after the restore was asked: reconcile, which waits for the pages too.
    // Only the target knows whether every page arrived: CRIU here also ends well when its peer just hangs up.
    const there = await this.phase(migration, 'pages', () => this.targetRuns(migration, peer));
    if (!there) {
      const lost = new MigrationInterruptedError(
        "the target's container did not get all its memory pages and was killed there; the source runs on",
      );
      return this.rollback(migration, peer, 'pages', lost, true);
    }
    migration.targetContainer = { id: there.id, name: there.name };
    // Neither copy holds the memory pages: no restore could use them.
    await peer.deleteCheckpoint(migration.targetCheckpointId!).catch(() => undefined);
    await this.finish(migration, peer, keepSource, async () => {
      await this.deps.checkpoints.remove(migration.checkpointId!).catch(() => undefined);
    });
  }

  /**
   * After a failure or a crash past the checkpoint, the workload ends up on exactly one host: where the target
   * was asked to restore, only it can say whether the workload runs there; if it does not, the source runs it.
   */
  private async settle(
    migration: Migration,
    peer: PeerAgent,
    keepSource: boolean,
    failedIn: MigrationPhaseName,
    cause: unknown,
  ): Promise<void> {
    let release: (() => void) | undefined;
    try {
      release = this.deps.checkpoints.retain(migration.checkpointId!).release;
      if (migration.targetContainer) return await this.finish(migration, peer, keepSource);
      const restoreAsked = migration.phases.some((p) => p.name === 'restore');
      // A target silent past the deadline while the pages came: asking again would wait as long once more.
      if (restoreAsked && !(cause instanceof DeadlineExceededError)) {
        let there: RestoredContainer | undefined;
        try {
          there = await this.phase(migration, 'reconcile', () => this.targetRuns(migration, peer));
        } catch (err) {
          if (!(err instanceof DeadlineExceededError)) throw err;
          return await this.rollback(migration, peer, failedIn, err, restoreAsked);
        }
        if (there) {
          migration.targetContainer = { id: there.id, name: there.name };
          return await this.finish(migration, peer, keepSource);
        }
      }
      await this.rollback(migration, peer, failedIn, cause, restoreAsked);
    } catch (err) {
      // The migration runs in the background: nothing here may reject (its checkpoint deleted meanwhile, say).
      this.failAfter(migration, failedIn, cause, 'settling it', err);
    } finally {
      release?.();
    }
  }

  /**
   * The target's container restored from its copy, if it runs; else the copy is deleted first, so that no restore
   * can start there later. Asks again, for as long as it takes, while the target cannot answer or still restores.
   */
  private async targetRuns(migration: Migration, peer: PeerAgent): Promise<RestoredContainer | undefined> {
    const copy = migration.targetCheckpointId!;
    const waits = this.deps.settleRetryMs ?? SETTLE_RETRY_MS;
    // A disk pre-copy's restore goes into the container prepared from its seed, which carries the seed's id.
    const seed = migration.precopy?.targetCheckpointId;
    const silentFor = this.deps.settleTimeoutMs ?? DEADLINES.migrationSettle.ms;
    let answeredAt = this.deps.clock.now();
    const running = async () => {
      const there = [
        ...(await peer.restoredContainers(copy)),
        ...(seed ? await peer.restoredContainers(seed) : []),
      ];
      if (there.some((c) => c.running && c.pages === 'loading'))
        throw new TargetStillRestoring('its container there still fetches its memory pages from here');
      return there.find((c) => c.running && c.pages !== 'failed');
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const before = await running();
        if (before) return before;
        if ((await peer.deleteCheckpoint(copy)) === 'in-use') throw new TargetStillRestoring('');
        return await running();
      } catch (err) {
        if (!(err instanceof TargetError || err instanceof TargetStillRestoring)) throw err;
        const now = this.deps.clock.now();
        if (err instanceof TargetStillRestoring) answeredAt = now;
        else if (now - answeredAt >= silentFor)
          throw new DeadlineExceededError(
            `an answer from the target ${migration.target} (whether it runs the workload)`,
            silentFor,
            DEADLINES.migrationSettle.setting,
            { cause: err },
          );
        const phase = migration.phases.at(-1)!;
        const loading = err instanceof TargetStillRestoring && err.message !== '';
        phase.detail = loading
          ? err.message
          : err instanceof TargetStillRestoring
            ? 'the target is still restoring its copy'
            : `waiting for the target to answer: ${err.message}`;
        this.emit(migration);
        if (loading) attempt--;
        await sleep(loading ? PAGES_POLL_MS : waits[Math.min(attempt, waits.length - 1)]);
      }
    }
  }

  /** The workload runs on the target: the source goes (unless kept, or running again), its checkpoint stays. */
  private async finish(
    migration: Migration,
    peer: PeerAgent,
    keepSource: boolean,
    after: () => Promise<void> = async () => undefined,
  ): Promise<void> {
    const { runtime } = this.deps;
    await this.phase(migration, 'finish', async () => {
      await this.endHold(migration, 'stop');
      const source = await runtime.inspect(migration.container.id);
      if (!keepSource && source && !source.running) await runtime.remove(source.id);
    }).catch(() => undefined);
    await after();
    await this.dropPreCopy(migration, peer, true);
    this.end(migration, 'succeeded');
  }

  /** The source container comes back from its checkpoint; a copy the target kept without a restore goes. */
  private async rollback(
    migration: Migration,
    peer: PeerAgent,
    failedIn: MigrationPhaseName,
    cause: unknown,
    copyGone: boolean,
  ): Promise<void> {
    try {
      await this.phase(migration, 'rollback', async () => {
        if (!copyGone) await this.dropTargetCopy(migration, peer);
        // A source held frozen runs on from its freeze; one that stopped is restored from the checkpoint.
        await this.endHold(migration, 'thaw');
        const source = await this.deps.runtime.inspect(migration.container.id);
        // Already running again: a rollback interrupted after its restore, or someone started it.
        if (!source?.running) await this.deps.checkpoints.restore(migration.checkpointId!, { ports: 'free' });
        await this.dropPreCopy(migration, peer);
      });
      this.end(migration, 'rolled_back', failedIn, cause);
    } catch (err) {
      this.failAfter(migration, failedIn, cause, 'the rollback', err);
    }
  }

  /** Ends the migration failed with both errors: the one that stopped it, and the one that undoing it met. */
  private failAfter(
    migration: Migration,
    failedIn: MigrationPhaseName,
    cause: unknown,
    step: string,
    err: unknown,
  ): void {
    this.end(
      migration,
      'failed',
      failedIn,
      new Error(`${message(cause)}; then ${step} failed: ${message(err)}`),
    );
  }

  /** The journal's record of a source frozen for this migration (its dump's, which outlives a crash). */
  private heldEntries(migrationId: string) {
    return (this.deps.journal?.pending() ?? []).filter(
      (e) => e.intent.kind === HostIntentKind.FROZEN && e.intent.heldBy === migrationId,
    );
  }

  /**
   * Ends the freeze that kept the source for this migration, if one does: 'stop' once the target runs the
   * workload (the source is killed while frozen, so it never runs again), 'thaw' when it does not.
   */
  private async endHold(migration: Migration, how: 'stop' | 'thaw'): Promise<void> {
    const entries = this.heldEntries(migration.id);
    if (!this.held.has(migration.id) && entries.length === 0) return;
    const { runtime } = this.deps;
    await this.endPageServer(migration, how);
    if (how === 'stop') await runtime.stopFrozen(migration.container.id);
    else await runtime.thawFrozen(migration.container.id);
    for (const e of entries) this.deps.journal?.end(e.id);
    this.held.delete(migration.id);
  }

  /**
   * A post-copy source's CRIU holds its tasks until it stops serving: it is told to stop (a connection that ends
   * at once) before a thaw, and awaited before a stop. A page server of a cryo that died is reached by its address.
   */
  private async endPageServer(migration: Migration, how: 'stop' | 'thaw'): Promise<void> {
    const pages = this.pages.get(migration.id);
    this.pages.delete(migration.id);
    if (how === 'thaw') {
      if (pages) await pages.abort();
      else if (migration.pageServer) await hangUp(migration.pageServer);
      return;
    }
    if (pages) await Promise.race([pages.served.catch(() => undefined), sleep(30_000)]);
  }

  /** Best effort: the target may have published the import without the source learning its id. */
  private async dropTargetCopy(migration: Migration, peer: PeerAgent): Promise<void> {
    try {
      const copy = migration.targetCheckpointId ?? (await peer.findCheckpoint(checkpointName(migration)))?.id;
      if (copy) await peer.deleteCheckpoint(copy);
    } catch {
      // An unreachable target removes an unfinished import itself; a finished one ages out with its sweeper.
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
        code: errorCode(err),
        message: message(err),
      };
    }
    this.inFlight.delete(migration.container.id);
    this.measure(migration);
    this.emit(migration);
    const intent = this.intents.get(migration.id);
    if (intent !== undefined) this.deps.journal?.end(intent);
    this.intents.delete(migration.id);
  }

  private measure(migration: Migration): void {
    const { metrics } = this;
    metrics.inFlight('migration', -1);
    const seconds = (Date.parse(migration.endedAt!) - Date.parse(migration.startedAt)) / 1000;
    const outcome =
      migration.status === 'succeeded'
        ? 'success'
        : migration.status === 'rolled_back'
          ? 'rolled_back'
          : 'failure';
    const strategy = migration.strategy?.used ?? 'stop-and-copy';
    metrics.operation('migration', strategy, outcome, seconds, migration.error?.code);
    if (migration.downtimeMs !== undefined && migration.status === 'succeeded')
      metrics.migrationDowntime(migration.downtimeMs / 1000);
  }

  private get metrics(): Metrics {
    return this.deps.metrics ?? NO_METRICS;
  }

  private emit(migration: Migration): void {
    this.deps.store.save(migration);
    this.events.emit('update', structuredClone(migration));
  }
}

/** The name of the migration's disk pre-copy seed, on both hosts. */
function seedName(migration: Migration): string {
  return `${MIGRATION_CHECKPOINT_PREFIX}${migration.id}-seed`;
}

/** The migration's checkpoint's name, on both hosts (the archive keeps it). */
function checkpointName(migration: Migration): string {
  return `${MIGRATION_CHECKPOINT_PREFIX}${migration.id}`;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A peer's view of an IPv4 caller may come as IPv4-mapped IPv6 (::ffff:10.0.0.1): CRIU wants the IPv4. */
function normalizeAddress(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

function mib(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}

/** A port free at `address` now, for a page server to listen on. */
function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
