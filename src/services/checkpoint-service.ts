import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type {
  ApplicationMode,
  Checkpoint,
  CheckpointApplication,
  ContainerCriuOptions,
  CreateCheckpointBody,
  RestoreBody,
  RestoreResult,
} from '../domain/checkpoint.js';
import {
  AppError,
  ApplicationRestoreFailedError,
  CheckpointInUseError,
  CheckpointNameInUseError,
  CheckpointNotFoundError,
  ContainerNameInUseError,
  ContainerNotFoundError,
  ContainerNotRunningError,
  ContainerRunningError,
  CriuUnavailableError,
  DockerNotExperimentalError,
  ErrorCode,
  ImageNotFoundError,
  PreflightFailedError,
  RestoreAbandonedError,
  RestoreModeUnavailableError,
  ValidationError,
} from '../domain/errors/index.js';
import { requireHostFits } from '../domain/host-fit.js';
import { LABEL_RESTORED_FROM, LABEL_SOURCE_CONTAINER } from '../domain/labels.js';
import {
  ARCHIVE_FORMAT_VERSION,
  CHECKPOINT_IMAGES_DIR,
  CONFIG_DUMP,
  CRYO_MANIFEST,
  DOCKER_CONFIG,
  NETWORK_STATUS,
  SPEC_DUMP,
} from '../domain/layout.js';
import { ManifestSchema, type Manifest, type ManifestEntry, type MountRecord } from '../domain/manifest.js';
import { CRYO_VERSION } from '../version.js';
import type { CheckpointCatalog, CheckpointFilter } from './checkpoint-catalog.js';
import type { CheckpointEngine } from './checkpoint-engine.js';
import type { Clock } from './clock.js';
import type { ContainerInfo, ContainerRuntime, RuntimeCheckpointResult } from './container-runtime.js';
import { SIDECAR_RESTORE_MARKER } from '../domain/sidecar/protocol.js';
import { operatorsOf, type OperatorsView } from '../domain/sidecar/metadata.js';
import { configDump, fallbackSpec, networkStatus } from './engine-configs.js';
import { localHost, type HostInfo } from './host-info.js';
import type { ImageStore } from './image-store.js';
import { KeyedLocks } from './keyed-locks.js';
import type { ProcessService } from './process-service.js';
import { replaceFile } from './replace-file.js';
import { publishCheckpoint } from './publish-checkpoint.js';
import type { RootfsChanges } from './rootfs-changes.js';
import type { ApplicationCut, SidecarService } from './sidecar/sidecar-service.js';

export interface CheckpointServiceDeps {
  runtime: ContainerRuntime;
  engine: CheckpointEngine;
  catalog: CheckpointCatalog;
  store: ImageStore;
  rootfs: RootfsChanges;
  clock: Clock;
  /** Pre-flight checks and process checkpoint restores. */
  processes?: ProcessService;
  host?: HostInfo;
  locks?: KeyedLocks;
  /** Operator checkpoints of stream jobs through their sidecar (`application`). */
  sidecar?: SidecarService | undefined;
  /** Every file of a checkpoint directory (but the manifest) with its size and sha256, as an export lists them. */
  describeEntries?: (dir: string) => Promise<ManifestEntry[]>;
}

export type CreateCheckpointOptions = Pick<CreateCheckpointBody, 'leaveRunning'> &
  Partial<Omit<CreateCheckpointBody, 'leaveRunning'>>;

export interface CreateCheckpointInternals {
  /**
   * Hash every entry for cryo.json now, while Docker handles the exit, rather than on the first export: a
   * checkpoint that is about to be sent (a migration) saves a full read of its images during the downtime.
   */
  hashEntries?: boolean;
}

/** One restore of a container checkpoint, as every way of restoring it needs it. */
interface RestoreJob {
  checkpoint: Checkpoint;
  manifest: Manifest;
  dir: string;
  body: RestoreBody;
  started: number;
  /** Set only with body.abandonOnDisconnect: aborts when the caller has gone. */
  abandoned: AbortSignal | undefined;
}

/** Checkpoints Docker containers and restores them, into the same container or a new one. */
export class CheckpointService {
  private readonly locks: KeyedLocks;
  private readonly host: HostInfo;
  private readonly users = new Map<string, number>();
  private support: { at: number; criuVersion: string } | undefined;

  constructor(private readonly deps: CheckpointServiceDeps) {
    this.locks = deps.locks ?? new KeyedLocks();
    this.host = deps.host ?? localHost();
  }

  async create(
    ref: string,
    body: CreateCheckpointOptions,
    internals: CreateCheckpointInternals = {},
  ): Promise<Checkpoint> {
    const { runtime, catalog, store, clock } = this.deps;
    const started = clock.now();
    const container = await runtime.inspect(ref);
    if (!container) throw new ContainerNotFoundError(ref);
    // Lock before looking at the state: a container being dumped shows as paused for a while.
    const release = this.locks.acquire(container.id, 'checkpoint', `container "${container.name}"`);
    const id = newId(started);
    try {
      if (!container.running || container.paused) throw new ContainerNotRunningError(ref, container.state);
      const name = body.name ?? `checkpoint-${id}`;
      if (catalog.findByName(container.id, name)) throw new CheckpointNameInUseError(container.name, name);
      const criu: ContainerCriuOptions = {
        tcpEstablished: body.tcpEstablished ?? false,
        fileLocks: body.fileLocks ?? false,
        externalUnixSockets: body.externalUnixSockets ?? false,
        ...(body.ghostLimitBytes !== undefined ? { ghostLimitBytes: body.ghostLimitBytes } : {}),
      };
      const application = body.application ?? false;
      const applicationMode = body.applicationMode ?? 'exactly_once';
      const sidecar = application ? this.requireSidecar() : undefined;
      if (application === 'only' && sidecar) {
        return await this.createApplicationOnly(container, id, name, started, applicationMode, sidecar);
      }
      const processes = body.force ? undefined : this.deps.processes;
      const [criuVersion, preflight, runtimeSpec] = await Promise.all([
        this.requireCheckpointSupport(),
        processes?.preflightOf(container, criu),
        runtime.runtimeSpec(container.id),
      ]);
      if (preflight && !preflight.checkpointable) throw new PreflightFailedError(preflight.problems);
      const spec = runtimeSpec ?? fallbackSpec(container.config);
      const createdAt = new Date(started);
      let cut: ApplicationCut | undefined;
      const published = publishCheckpoint(
        store,
        catalog,
        id,
        async (dir) => {
          // The operator cut comes first, and its connection is closed before CRIU looks at the sockets.
          if (sidecar) cut = await sidecar.cut(container.pid, dir, store.path(id), applicationMode, false);
          const dumpStarted = clock.now();
          let dumped: RuntimeCheckpointResult;
          try {
            dumped = await runtime.checkpoint(container.id, {
              checkpointId: id,
              parentDir: dir,
              exit: !body.leaveRunning,
              criu,
            });
          } catch (err) {
            // A failed checkpoint must never leave the container paused or frozen.
            await runtime.ensureNotFrozen(container.id);
            throw err;
          }
          // Nor a leave-running one; after a stop-mode dump CRIU has killed the tasks, and `settled` waits for
          // Docker to see that.
          if (body.leaveRunning) await runtime.ensureNotFrozen(container.id);
          const dumpMs = clock.now() - dumpStarted;
          try {
            await rename(path.join(dir, id), path.join(dir, CHECKPOINT_IMAGES_DIR));
            const rootfs = await this.deps.rootfs.record(container.id, dir);
            const mounts = await this.deps.rootfs.recordMounts(
              container.id,
              dir,
              body.includeVolumes ?? false,
            );
            await writeConfigs(dir, container, createdAt, spec);
            const entries =
              internals.hashEntries && this.deps.describeEntries ? await this.deps.describeEntries(dir) : [];
            await writeJson(
              path.join(dir, CRYO_MANIFEST),
              this.manifest(
                container,
                createdAt,
                criuVersion,
                mounts,
                rootfs,
                {
                  id,
                  name,
                  leaveRunning: body.leaveRunning,
                  dumpMs,
                  criu,
                  ...(cut ? { application: applicationOf(cut) } : {}),
                },
                entries,
              ),
            );
          } catch (err) {
            await dumped.settled.catch(() => undefined);
            throw err;
          }
          return { dumpMs, dumped };
        },
        ({ dumpMs, dumped }, sizeBytes) => ({
          id,
          name,
          kind: 'container',
          container: { id: container.id, name: container.name, image: container.image },
          createdAt: createdAt.toISOString(),
          leaveRunning: body.leaveRunning,
          ...(cut ? { application: applicationOf(cut) } : {}),
          sizeBytes,
          stats: { dumpMs, totalMs: clock.now() - started, ...dumped.stats, path: dumped.path },
          status: 'complete',
        }),
        // Docker handles the container's exit while the images are fsynced.
        ({ dumped }) => dumped.settled,
      );
      // The job commits the cut's output only once the checkpoint is published; a stopped job will on restore.
      let checkpoint: Checkpoint;
      try {
        checkpoint = await published;
      } catch (err) {
        if (sidecar && cut && body.leaveRunning) await sidecar.finish(container.pid, cut, false);
        throw err;
      }
      if (sidecar && cut && body.leaveRunning) await sidecar.finish(container.pid, cut, true);
      return checkpoint;
    } finally {
      release();
    }
  }

  /** `application: "only"`: the job's operator state without CRIU; nothing is frozen. */
  private async createApplicationOnly(
    container: ContainerInfo,
    id: string,
    name: string,
    started: number,
    mode: ApplicationMode,
    sidecar: SidecarService,
  ): Promise<Checkpoint> {
    const { catalog, store, clock, runtime } = this.deps;
    const createdAt = new Date(started);
    const spec = (await runtime.runtimeSpec(container.id)) ?? fallbackSpec(container.config);
    let cut: ApplicationCut | undefined;
    let checkpoint: Checkpoint;
    try {
      checkpoint = await publishCheckpoint(
        store,
        catalog,
        id,
        async (dir) => {
          cut = await sidecar.cut(container.pid, dir, store.path(id), mode, true);
          const dumpMs = clock.now() - started;
          await writeConfigs(dir, container, createdAt, spec);
          await writeJson(
            path.join(dir, CRYO_MANIFEST),
            this.manifest(
              container,
              createdAt,
              '',
              [],
              { changed: 0, deleted: 0 },
              {
                id,
                name,
                leaveRunning: true,
                dumpMs,
                processImage: false,
                application: applicationOf(cut),
              },
            ),
          );
          return { dumpMs, cut };
        },
        ({ dumpMs, cut: c }, sizeBytes) => ({
          id,
          name,
          kind: 'container',
          container: { id: container.id, name: container.name, image: container.image },
          createdAt: createdAt.toISOString(),
          leaveRunning: true,
          processImage: false,
          application: applicationOf(c),
          sizeBytes,
          stats: { dumpMs, totalMs: clock.now() - started },
          status: 'complete',
        }),
      );
    } catch (err) {
      if (cut) await sidecar.finish(container.pid, cut, false);
      throw err;
    }
    await sidecar.finish(container.pid, cut!, true);
    return checkpoint;
  }

  /** What the stream job inside a container registers, and its latest checkpoint with operator state. */
  async operators(ref: string): Promise<OperatorsView> {
    const container = await this.deps.runtime.inspect(ref);
    if (!container) throw new ContainerNotFoundError(ref);
    if (!container.running || container.paused) throw new ContainerNotRunningError(ref, container.state);
    const register = await this.requireSidecar().describe(container.pid);
    const last = this.deps.catalog
      .list({ container: container.id })
      .filter((c) => c.application?.job === register.job)
      .at(-1);
    return {
      job: register.job,
      maxParallelism: register.maxParallelism,
      finished: register.finished,
      lastCheckpointId: register.lastCheckpointId,
      committedCheckpointId: register.committedCheckpointId,
      operators: operatorsOf(register),
      ...(last?.application
        ? {
            lastCompleted: {
              checkpoint: last.id,
              checkpointId: last.application.checkpointId,
              createdAt: last.createdAt,
            },
          }
        : {}),
    };
  }

  /** cryo.json of a container checkpoint; without `entries`, they are hashed on the first export. */
  private manifest(
    container: ContainerInfo,
    createdAt: Date,
    criuVersion: string,
    mounts: MountRecord[],
    rootfs: Manifest['rootfs'],
    checkpoint: Manifest['checkpoint'],
    entries: ManifestEntry[] = [],
  ): Manifest {
    return {
      formatVersion: ARCHIVE_FORMAT_VERSION,
      cryoVersion: CRYO_VERSION,
      createdAt: createdAt.toISOString(),
      checkpoint,
      container: { id: container.id, name: container.name },
      image: { ref: container.image, id: container.imageId },
      source: { ...this.host, criuVersion },
      mounts,
      rootfs,
      entries,
    };
  }

  private requireSidecar(): SidecarService {
    if (!this.deps.sidecar) throw new Error('the sidecar service is not wired');
    return this.deps.sidecar;
  }

  list(filter: CheckpointFilter = {}): Checkpoint[] {
    return this.deps.catalog.list(filter);
  }

  get(id: string): Checkpoint {
    const checkpoint = this.deps.catalog.get(id);
    if (!checkpoint) throw new CheckpointNotFoundError(id);
    return checkpoint;
  }

  async remove(id: string): Promise<void> {
    this.get(id);
    if (this.isInUse(id)) throw new CheckpointInUseError(id);
    this.deps.catalog.remove(id);
    await this.deps.store.remove(id);
  }

  /**
   * The checkpoint's manifest with every entry's size and sha256, as an export needs it: hashed on the first
   * export (or during a migration's checkpoint) and kept in the checkpoint.
   */
  async completeManifest(id: string): Promise<Manifest> {
    const dir = this.deps.store.path(id);
    const manifest = await readManifest(dir);
    if (manifest.entries.length > 0) return manifest;
    if (!this.deps.describeEntries) throw new Error('exports are not wired: no describeEntries');
    const complete: Manifest = { ...manifest, entries: await this.deps.describeEntries(dir) };
    await replaceFile(path.join(dir, CRYO_MANIFEST), JSON.stringify(complete, null, 2));
    return complete;
  }

  /** Marks the checkpoint in use, so that it cannot be deleted, until `release` is called. */
  retain(id: string): { checkpoint: Checkpoint; dir: string; release: () => void } {
    const checkpoint = this.get(id);
    this.users.set(id, (this.users.get(id) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.users.get(id) ?? 1) - 1;
      if (n > 0) this.users.set(id, n);
      else this.users.delete(id);
    };
    return { checkpoint, dir: this.deps.store.path(id), release };
  }

  /** Runs `fn` while the checkpoint is retained. */
  async using<T>(id: string, fn: (checkpoint: Checkpoint, dir: string) => Promise<T>): Promise<T> {
    const { checkpoint, dir, release } = this.retain(id);
    try {
      return await fn(checkpoint, dir);
    } finally {
      release();
    }
  }

  isInUse(id: string): boolean {
    return (this.users.get(id) ?? 0) > 0;
  }

  /** `abandoned` (with body.abandonOnDisconnect) aborts when the caller has gone: the new container goes too. */
  async restore(id: string, body: RestoreBody, abandoned?: AbortSignal): Promise<RestoreResult> {
    const started = this.deps.clock.now();
    if (body.abandonOnDisconnect && body.name === undefined) {
      throw new ValidationError(
        'abandonOnDisconnect applies to a restore into a new container',
        'give a name for the new container',
      );
    }
    const gone = body.abandonOnDisconnect ? abandoned : undefined;
    return this.using(id, async (checkpoint, dir) => {
      if (checkpoint.kind === 'process') {
        if (!this.deps.processes) throw new Error('process restores are not wired');
        return this.deps.processes.restore(dir);
      }
      const hasImage = checkpoint.processImage !== false;
      const mode = body.mode ?? (hasImage ? 'process' : 'application');
      if (mode === 'process' && !hasImage) throw new RestoreModeUnavailableError(id, 'process');
      if (mode === 'application' && !checkpoint.application)
        throw new RestoreModeUnavailableError(id, 'application');
      if (body.env && (mode === 'process' || body.name === undefined)) {
        throw new ValidationError(
          'env applies to an application restore into a new container',
          'give mode "application" (or "auto") and a name',
        );
      }
      const job: RestoreJob = {
        checkpoint,
        manifest: await readManifest(dir),
        dir,
        body,
        started,
        abandoned: gone,
      };
      let fallback: string | undefined;
      if (mode !== 'application' && hasImage) {
        try {
          const restored = await this.restoreProcess(job);
          if (checkpoint.application && restored.container)
            await this.notifyRestored(restored.container.id, checkpoint);
          return { ...restored, mode: 'process' as const };
        } catch (err) {
          if (
            mode === 'process' ||
            !checkpoint.application ||
            !(err instanceof AppError) ||
            !FALLBACK_CODES.has(err.code)
          )
            throw err;
          fallback = `${err.code}: ${err.message}`;
        }
      } else if (mode === 'auto') fallback = 'the checkpoint holds no CRIU image';
      const restored = await this.restoreApplication(job);
      return { ...restored, mode: 'application' as const, ...(fallback ? { fallback } : {}) };
    });
  }

  private async restoreProcess(job: RestoreJob): Promise<RestoreResult> {
    const criuVersion = await this.requireCheckpointSupport();
    requireHostFits(job.manifest.source, { ...this.host, criuVersion });
    if (job.body.name === undefined) return this.restoreInPlace(job);
    return this.restoreAsNew(job, job.body.name);
  }

  /** The restored process's cut was never confirmed to it: `complete` lets its sink commit that epoch. */
  private async notifyRestored(containerId: string, checkpoint: Checkpoint): Promise<void> {
    const info = await this.deps.runtime.inspect(containerId);
    if (!info?.running || !checkpoint.application) return;
    await this.requireSidecar().finish(
      info.pid,
      { checkpointId: checkpoint.application.checkpointId, channel: undefined },
      true,
    );
  }

  /**
   * Starts the container afresh, with a marker that makes the SDK wait, and hands the job its operator state:
   * each subtask's key groups and the sources' offsets. On failure the new container is removed, or the
   * original one stopped again; the checkpoint stays.
   */
  private async restoreApplication(job: RestoreJob): Promise<RestoreResult> {
    const { checkpoint, dir, body, started, abandoned } = job;
    const { runtime, rootfs, clock } = this.deps;
    const sidecar = this.requireSidecar();
    const application = checkpoint.application!;
    let target: { id: string; name: string };
    let created = false;
    if (body.name === undefined) {
      const container = await this.originalContainer(checkpoint);
      if (container.running) throw new ContainerRunningError(container.name);
      target = { id: container.id, name: container.name };
    } else {
      target = await this.createRestoreTarget(job, body.name, body.env);
      created = true;
    }
    const release = this.locks.acquire(target.id, 'restore', `container "${target.name}"`);
    try {
      if (created && checkpoint.processImage !== false) await rootfs.apply(target.id, dir);
      await runtime.putFile(
        target.id,
        SIDECAR_RESTORE_MARKER,
        Buffer.from(JSON.stringify({ checkpoint: checkpoint.id, checkpointId: application.checkpointId })),
      );
      await runtime.start(target.id);
      const info = await runtime.inspect(target.id);
      if (!info?.running)
        throw new ApplicationRestoreFailedError(`container "${target.name}" exited at start`);
      const loaded = await sidecar.restore(info.pid, dir);
      if (abandoned?.aborted) throw new RestoreAbandonedError(target.name);
      return { container: target, restoreMs: clock.now() - started, application: loaded };
    } catch (err) {
      if (created) await runtime.remove(target.id);
      else await runtime.stop(target.id).catch(() => undefined);
      throw err;
    } finally {
      release();
    }
  }

  /** The container a checkpoint was taken of, for a restore in place. */
  private async originalContainer(checkpoint: Checkpoint): Promise<ContainerInfo> {
    const original = checkpoint.container;
    const container = original ? await this.deps.runtime.inspect(original.id) : undefined;
    if (!container) {
      throw new ContainerNotFoundError(
        original?.name ?? checkpoint.name,
        'the container this checkpoint was taken of is gone; restore into a new one with {"name": "..."}',
      );
    }
    return container;
  }

  /** A new, never started container named `name` from the checkpoint's Docker config (with `env` set over it). */
  private async createRestoreTarget(
    job: RestoreJob,
    name: string,
    env?: string[],
  ): Promise<{ id: string; name: string }> {
    const { checkpoint, manifest, dir } = job;
    const { runtime } = this.deps;
    if (await runtime.inspect(name)) throw new ContainerNameInUseError(name);
    const config = withEnv(JSON.parse(await readFile(path.join(dir, DOCKER_CONFIG), 'utf8')) as unknown, env);
    if (!(await runtime.imageExists(manifest.image.id))) {
      throw new ImageNotFoundError(manifest.image.ref, manifest.image.id);
    }
    return runtime.createFromConfig(
      config,
      name,
      { [LABEL_RESTORED_FROM]: checkpoint.id, [LABEL_SOURCE_CONTAINER]: checkpoint.container?.id ?? '' },
      job.body.ports,
    );
  }

  private async restoreAsNew(job: RestoreJob, name: string): Promise<RestoreResult> {
    const { manifest, dir, started, abandoned } = job;
    const { runtime, rootfs, clock } = this.deps;
    const volumesBefore = await runtime.volumeNames();
    const created = await this.createRestoreTarget(job, name);
    const release = this.locks.acquire(created.id, 'restore', `container "${created.name}"`);
    try {
      await rootfs.apply(created.id, dir);
      const fresh = new Set([...(await runtime.volumeNames())].filter((v) => !volumesBefore.has(v)));
      await rootfs.applyVolumes(created.id, dir, manifest.mounts, fresh);
      if (abandoned?.aborted) throw new RestoreAbandonedError(created.name);
      await runtime.restore(created.id, path.join(dir, CHECKPOINT_IMAGES_DIR), criuOf(manifest));
      // Nobody can learn that it runs: a migration's source has rolled back, so this copy must not run on.
      if (abandoned?.aborted) throw new RestoreAbandonedError(created.name);
    } catch (err) {
      // A failed or abandoned restore leaves nothing behind: the new container is removed (killed if it ran).
      await runtime.remove(created.id);
      throw err;
    } finally {
      release();
    }
    return { container: created, restoreMs: clock.now() - started };
  }

  private async restoreInPlace(job: RestoreJob): Promise<RestoreResult> {
    const { checkpoint, manifest, dir, started } = job;
    const { runtime, clock } = this.deps;
    const container = await this.originalContainer(checkpoint);
    const release = this.locks.acquire(container.id, 'restore', `container "${container.name}"`);
    try {
      if (container.running) throw new ContainerRunningError(container.name);
      await runtime.restore(container.id, path.join(dir, CHECKPOINT_IMAGES_DIR), criuOf(manifest));
    } finally {
      release();
    }
    return { container: { id: container.id, name: container.name }, restoreMs: clock.now() - started };
  }

  /** Docker's experimental mode and CRIU's version, asked again at most every few seconds. */
  private async requireCheckpointSupport(): Promise<string> {
    const now = this.deps.clock.now();
    if (this.support && now - this.support.at < SUPPORT_TTL_MS) return this.support.criuVersion;
    const version = await this.deps.runtime.version();
    if (!version.experimental) throw new DockerNotExperimentalError();
    let criuVersion: string;
    try {
      criuVersion = await this.deps.engine.version();
    } catch (err) {
      if (err instanceof CriuUnavailableError) throw err;
      throw new CriuUnavailableError(String(err), { cause: err });
    }
    this.support = { at: now, criuVersion };
    return criuVersion;
  }
}

const SUPPORT_TTL_MS = 5_000;

export async function readManifest(dir: string): Promise<Manifest> {
  return ManifestSchema.parse(JSON.parse(await readFile(path.join(dir, CRYO_MANIFEST), 'utf8')));
}

/** Failures after which mode auto restores the operator state instead: CRIU or this host cannot. */
const FALLBACK_CODES = new Set<ErrorCode>([
  ErrorCode.CRIU_FAILED,
  ErrorCode.CRIU_UNAVAILABLE,
  ErrorCode.HOST_MISMATCH,
  ErrorCode.DOCKER_NOT_EXPERIMENTAL,
  ErrorCode.DOCKER_FAILED,
]);

function applicationOf(cut: ApplicationCut): CheckpointApplication {
  return {
    job: cut.job,
    checkpointId: cut.checkpointId,
    mode: cut.mode,
    subtasks: cut.subtasks,
    stateBytes: cut.stateBytes,
  };
}

/** Docker's config with `env` (NAME=value) set over its environment. */
function withEnv(config: unknown, env: string[] | undefined): unknown {
  if (!env || env.length === 0) return config;
  const c = config as { Config?: { Env?: string[] } };
  const names = new Set(env.map((e) => e.slice(0, e.indexOf('='))));
  const kept = (c.Config?.Env ?? []).filter((e) => !names.has(e.slice(0, e.indexOf('='))));
  return { ...c, Config: { ...c.Config, Env: [...kept, ...env] } };
}

function criuOf(manifest: Manifest): ContainerCriuOptions {
  return manifest.checkpoint.criu ?? { tcpEstablished: false, fileLocks: false, externalUnixSockets: false };
}

/** Docker's config, config.dump, spec.dump and (when known) network.status: what a restore elsewhere needs. */
async function writeConfigs(
  dir: string,
  container: ContainerInfo,
  createdAt: Date,
  spec: unknown,
): Promise<void> {
  const network = networkStatus(container.config);
  await writeJson(path.join(dir, DOCKER_CONFIG), container.config);
  await writeJson(path.join(dir, CONFIG_DUMP), configDump(container.config, createdAt));
  await writeJson(path.join(dir, SPEC_DUMP), spec);
  if (network) await writeJson(path.join(dir, NETWORK_STATUS), network);
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(value, null, 2), { mode: 0o600 });
}

/** A time-ordered id: 11 base-36 digits of milliseconds, then 10 random ones. */
export function newId(nowMs: number): string {
  const time = nowMs.toString(36).padStart(11, '0');
  const random = BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString(36)
    .padStart(13, '0')
    .slice(0, 10);
  return `${time}${random}`;
}
