import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint, CreateCheckpointBody, RestoreBody, RestoreResult } from '../domain/checkpoint.js';
import {
  CheckpointNameInUseError,
  CheckpointNotFoundError,
  ContainerNameInUseError,
  ContainerNotFoundError,
  ContainerNotRunningError,
  ContainerRunningError,
  CriuUnavailableError,
  DockerNotExperimentalError,
} from '../domain/errors.js';
import { LABEL_RESTORED_FROM, LABEL_SOURCE_CONTAINER } from '../domain/labels.js';
import { CHECKPOINT_IMAGES_DIR, CONFIG_DUMP } from '../domain/layout.js';
import type { CheckpointCatalog, CheckpointFilter } from './checkpoint-catalog.js';
import type { CheckpointEngine } from './checkpoint-engine.js';
import type { Clock } from './clock.js';
import type { ContainerRuntime } from './container-runtime.js';
import type { ImageStore } from './image-store.js';
import { KeyedLocks } from './keyed-locks.js';

export interface CheckpointServiceDeps {
  runtime: ContainerRuntime;
  engine: CheckpointEngine;
  catalog: CheckpointCatalog;
  store: ImageStore;
  clock: Clock;
  locks?: KeyedLocks;
}

/** Checkpoints Docker containers and restores them, into the same container or a new one. */
export class CheckpointService {
  private readonly locks: KeyedLocks;

  constructor(private readonly deps: CheckpointServiceDeps) {
    this.locks = deps.locks ?? new KeyedLocks();
  }

  async create(ref: string, body: CreateCheckpointBody): Promise<Checkpoint> {
    const { runtime, catalog, store, clock } = this.deps;
    const started = clock.now();
    const container = await runtime.inspect(ref);
    if (!container) throw new ContainerNotFoundError(ref);
    // Lock before looking at the state: a container being dumped shows as paused for a while.
    const release = this.locks.acquire(container.id, 'checkpoint', `container "${container.name}"`);
    const id = newId(started);
    let staged = false;
    try {
      if (!container.running || container.paused) throw new ContainerNotRunningError(ref, container.state);
      const name = body.name ?? `checkpoint-${id}`;
      if (catalog.findByName(container.id, name)) throw new CheckpointNameInUseError(container.name, name);
      await this.requireCheckpointSupport();

      const dir = await store.stage(id);
      staged = true;
      const dumpStarted = clock.now();
      try {
        await runtime.checkpoint(container.id, {
          checkpointId: id,
          parentDir: dir,
          exit: !body.leaveRunning,
        });
      } finally {
        // A failed (or a leave-running) checkpoint must never leave the container paused or frozen.
        await runtime.ensureNotFrozen(container.id);
      }
      const dumpMs = clock.now() - dumpStarted;
      await rename(path.join(dir, id), path.join(dir, CHECKPOINT_IMAGES_DIR));
      await writeFile(path.join(dir, CONFIG_DUMP), JSON.stringify(container.config, null, 2), {
        mode: 0o600,
      });
      const { sizeBytes } = await store.commit(id);
      staged = false;

      const checkpoint: Checkpoint = {
        id,
        name,
        container: { id: container.id, name: container.name, image: container.image },
        createdAt: new Date(started).toISOString(),
        leaveRunning: body.leaveRunning,
        sizeBytes,
        stats: { dumpMs, totalMs: clock.now() - started },
        status: 'complete',
      };
      try {
        catalog.add(checkpoint);
      } catch (err) {
        await store.remove(id);
        throw err;
      }
      return checkpoint;
    } finally {
      if (staged) await store.discard(id);
      release();
    }
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
    const release = this.locks.acquire(`checkpoint:${id}`, 'restore', `checkpoint "${id}"`);
    try {
      this.deps.catalog.remove(id);
      await this.deps.store.remove(id);
    } finally {
      release();
    }
  }

  async restore(id: string, body: RestoreBody): Promise<RestoreResult> {
    const { runtime, store, clock } = this.deps;
    const checkpoint = this.get(id);
    const started = clock.now();
    const releaseCheckpoint = this.locks.acquire(`checkpoint:${id}`, 'restore', `checkpoint "${id}"`);
    try {
      await this.requireCheckpointSupport();
      const dir = store.path(id);
      const imagesDir = path.join(dir, CHECKPOINT_IMAGES_DIR);
      if (body.name === undefined) {
        return await this.restoreInPlace(checkpoint, imagesDir, started);
      }
      if (await runtime.inspect(body.name)) throw new ContainerNameInUseError(body.name);
      const config = JSON.parse(await readFile(path.join(dir, CONFIG_DUMP), 'utf8')) as unknown;
      const created = await runtime.createFromConfig(config, body.name, {
        [LABEL_RESTORED_FROM]: checkpoint.id,
        [LABEL_SOURCE_CONTAINER]: checkpoint.container.id,
      });
      const release = this.locks.acquire(created.id, 'restore', `container "${created.name}"`);
      try {
        await runtime.restore(created.id, imagesDir);
      } catch (err) {
        // The new container never ran; remove it so a failed restore leaves nothing behind.
        await runtime.remove(created.id);
        throw err;
      } finally {
        release();
      }
      return { container: created, restoreMs: clock.now() - started };
    } finally {
      releaseCheckpoint();
    }
  }

  private async restoreInPlace(
    checkpoint: Checkpoint,
    imagesDir: string,
    started: number,
  ): Promise<RestoreResult> {
    const { runtime, clock } = this.deps;
    const container = await runtime.inspect(checkpoint.container.id);
    if (!container) {
      throw new ContainerNotFoundError(checkpoint.container.name);
    }
    if (container.running) throw new ContainerRunningError(container.name);
    const release = this.locks.acquire(container.id, 'restore', `container "${container.name}"`);
    try {
      await runtime.restore(container.id, imagesDir);
    } finally {
      release();
    }
    return { container: { id: container.id, name: container.name }, restoreMs: clock.now() - started };
  }

  private async requireCheckpointSupport(): Promise<void> {
    const version = await this.deps.runtime.version();
    if (!version.experimental) throw new DockerNotExperimentalError();
    try {
      await this.deps.engine.version();
    } catch (err) {
      if (err instanceof CriuUnavailableError) throw err;
      throw new CriuUnavailableError(String(err), { cause: err });
    }
  }
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
