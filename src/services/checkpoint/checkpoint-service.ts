import path from 'node:path';
import { inBackground } from '../support/background.js';
import { NO_LOGGER } from '../ports/logger.js';
import type {
  Checkpoint,
  PrepareBody,
  PreparedContainer,
  RestoreBody,
  RestoredContainer,
  RestoreResult,
  MigrationMark,
} from '../../domain/checkpoint.js';
import { CheckpointInUseError, CheckpointNotFoundError, ValidationError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR, CRYO_MANIFEST } from '../../domain/layout.js';
import { newId } from '../support/ids.js';
import { ManifestSchema, type Manifest } from '../../domain/manifest.js';
import type { OperatorsView } from '../../domain/sidecar/metadata.js';
import type { CheckpointFilter } from '../ports/checkpoint-catalog.js';
import {
  requireChain,
  requireSidecar,
  type CheckpointContext,
  type CheckpointServiceDeps,
} from './context.js';
import { createCheckpoint, type CreateCheckpointInternals, type CreateCheckpointOptions } from './create.js';
import { createDiskSeed, type DiskSeed } from './create-disk-seed.js';
import { CheckpointLeases } from './leases.js';
import { levelsOf } from './chain.js';
import { reconcileLevel, recoverRebase, removeCheckpoint } from './remove-level.js';
import { dropPrepared, prepareFromSeed } from './prepare.js';
import { PreparedContainers } from './prepared-containers.js';
import { readManifest } from './manifest.js';
import { restoreCheckpoint } from './restore.js';
import { CheckpointSupport } from './support.js';
import { DiskGuard } from '../support/disk-guard.js';
import { measured, NO_METRICS } from '../ports/metrics.js';
import { KeyedLocks } from '../support/keyed-locks.js';
import { replaceFile } from '../support/replace-file.js';
import { jobOperators } from '../sidecar/job-operators.js';

import type { HostFacts } from '../../domain/host-fit.js';

export type { CheckpointServiceDeps } from './context.js';
export type { CreateCheckpointInternals, CreateCheckpointOptions } from './create.js';
export type { DiskSeed } from './create-disk-seed.js';

/** The front the routes call: container checkpoints, the catalog, and the leases that keep a checkpoint in use. */
export class CheckpointService {
  private readonly ctx: CheckpointContext;

  constructor(deps: CheckpointServiceDeps) {
    this.ctx = {
      ...deps,
      guard: deps.guard ?? new DiskGuard(deps.store),
      metrics: deps.metrics ?? NO_METRICS,
      log: deps.log ?? NO_LOGGER,
      locks: deps.locks ?? new KeyedLocks(),
      leases: new CheckpointLeases(),
      support: new CheckpointSupport(deps.runtime, deps.engine, deps.clock),
      prepared: new PreparedContainers((entry) =>
        inBackground(
          this.ctx.log,
          `removing a prepared container ${entry.containerId}`,
          dropPrepared(this.ctx, entry),
        ),
      ),
    };
  }

  /** The first part of a migration's disk pre-copy (see createDiskSeed). */
  createDiskSeed(ref: string, name: string, migration: MigrationMark): Promise<DiskSeed> {
    return createDiskSeed(this.ctx, ref, name, migration);
  }

  /** Creates and fills the container that the changes checkpoint of this seed will restore into. */
  prepare(seedId: string, body: PrepareBody): Promise<PreparedContainer> {
    return this.using(seedId, (checkpoint, dir) => prepareFromSeed(this.ctx, checkpoint, dir, body));
  }

  async create(
    ref: string,
    body: CreateCheckpointOptions,
    internals: CreateCheckpointInternals = {},
  ): Promise<Checkpoint> {
    const { metrics } = this.ctx;
    const mode = body.application === 'only' ? 'application' : body.leaveRunning ? 'leave-running' : 'stop';
    const checkpoint = await measured(metrics, 'checkpoint', mode, () =>
      createCheckpoint(this.ctx, ref, body, internals),
    );
    const stoodStill = checkpoint.stats.pausedMs ?? checkpoint.stats.frozenMs;
    if (checkpoint.processImage !== false && stoodStill !== undefined) metrics.frozen(stoodStill / 1000);
    return checkpoint;
  }

  operators(ref: string): Promise<OperatorsView> {
    return jobOperators({ ...this.ctx, sidecar: requireSidecar(this.ctx) }, ref);
  }

  /**
   * At start: finishes or drops the rebases a crash cut short, then makes each level's record and cryo.json name
   * the parent its images link to (a crash may have come between the swap and the record).
   */
  async recoverChains(): Promise<string[]> {
    const recovered: string[] = [];
    for (const checkpoint of this.ctx.catalog.list()) {
      if (!checkpoint.chain) continue;
      const outcome = await recoverRebase(this.ctx.store.path(checkpoint.id));
      if (outcome !== 'none') recovered.push(`${checkpoint.id}: rebase ${outcome}`);
      if (await reconcileLevel(this.ctx, checkpoint)) recovered.push(`${checkpoint.id}: parent record`);
    }
    return recovered;
  }

  list(filter: CheckpointFilter = {}): Checkpoint[] {
    return this.ctx.catalog.list(filter);
  }

  /** The containers restores made, from one checkpoint or any (Docker's labels say, not the catalog). */
  restoredContainers(checkpointId?: string): Promise<RestoredContainer[]> {
    return this.ctx.runtime.listRestored(checkpointId);
  }

  /** What a checkpoint must fit to restore here: this host's architecture and kernel, and its CRIU's version. */
  async hostFacts(): Promise<HostFacts> {
    return { ...this.ctx.host, criuVersion: await this.ctx.support.require() };
  }

  get(id: string): Checkpoint {
    const checkpoint = this.ctx.catalog.get(id);
    if (!checkpoint) throw new CheckpointNotFoundError(id);
    return checkpoint;
  }

  async remove(id: string): Promise<void> {
    this.get(id);
    if (this.isInUse(id)) throw new CheckpointInUseError(id);
    await removeCheckpoint(this.ctx, this.get(id));
    // A seed's prepared containers wait for a restore that can no longer come.
    for (const entry of this.ctx.prepared.takeOfSeed(id)) await dropPrepared(this.ctx, entry);
  }

  /**
   * The checkpoint's manifest with every entry's size and sha256, as an export needs it: hashed on the first
   * export (or during a migration's checkpoint) and kept in the checkpoint.
   */
  async completeManifest(id: string): Promise<Manifest> {
    const dir = this.ctx.store.path(id);
    const manifest = await readManifest(dir);
    if (manifest.entries.length > 0) return manifest;
    if (!this.ctx.describeEntries) throw new Error('exports are not wired: no describeEntries');
    // In the schema's key order, as every later read gives it: the first export is the same bytes as the next.
    const complete = ManifestSchema.parse({ ...manifest, entries: await this.ctx.describeEntries(dir) });
    await replaceFile(path.join(dir, CRYO_MANIFEST), JSON.stringify(complete, null, 2));
    return complete;
  }

  /**
   * An incremental checkpoint as a full one, for an export that must stand alone: its images with every page of its
   * parents copied in, its other files linked, and a cryo.json that names no parent. `discard` removes it.
   */
  async flattened(id: string): Promise<{ dir: string; manifest: Manifest; discard: () => Promise<void> }> {
    const { store } = this.ctx;
    const chain = requireChain(this.ctx);
    const from = store.path(id);
    const scratch = `flat-${newId(this.ctx.clock.now())}`;
    const dir = await store.stage(scratch);
    const discard = () => store.discard(scratch);
    try {
      await chain.flatten(path.join(from, CHECKPOINT_IMAGES_DIR), path.join(dir, CHECKPOINT_IMAGES_DIR));
      await chain.linkFiles(from, dir, [CHECKPOINT_IMAGES_DIR, CRYO_MANIFEST]);
      if (!this.ctx.describeEntries) throw new Error('exports are not wired: no describeEntries');
      const original = await readManifest(from);
      const checkpoint = { ...original.checkpoint };
      delete checkpoint.parent;
      const manifest = ManifestSchema.parse({
        ...original,
        checkpoint,
        entries: await this.ctx.describeEntries(dir),
      });
      return { dir, manifest, discard };
    } catch (err) {
      await discard();
      throw err;
    }
  }

  /** Marks the checkpoint in use, so that it cannot be deleted, until `release` is called. */
  retain(id: string): { checkpoint: Checkpoint; dir: string; release: () => void } {
    const checkpoint = this.get(id);
    // An incremental checkpoint's images need its parents': they are held with it.
    const releases = this.levelsHere(checkpoint).map((level) => this.ctx.leases.take(level.id));
    return {
      checkpoint,
      dir: this.ctx.store.path(id),
      release: () => {
        for (const release of releases) release();
      },
    };
  }

  /** The levels of its chain that the catalog has (a restore refuses a broken chain with its own error). */
  private levelsHere(checkpoint: Checkpoint): Checkpoint[] {
    try {
      return levelsOf(this.ctx.catalog, checkpoint);
    } catch {
      return [checkpoint];
    }
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
    return this.ctx.leases.isLeased(id);
  }

  /** `abandoned` (with body.abandonOnDisconnect) aborts when the caller has gone: the new container goes too. */
  async restore(id: string, body: RestoreBody, abandoned?: AbortSignal): Promise<RestoreResult> {
    const started = this.ctx.clock.now();
    if (body.abandonOnDisconnect && body.name === undefined) {
      throw new ValidationError(
        'abandonOnDisconnect applies to a restore into a new container',
        'give a name for the new container',
      );
    }
    const gone = body.abandonOnDisconnect ? abandoned : undefined;
    return measured(this.ctx.metrics, 'restore', body.name === undefined ? 'in-place' : 'new-container', () =>
      this.using(id, (checkpoint, dir) =>
        restoreCheckpoint(this.ctx, { checkpoint, dir, body, started, abandoned: gone }),
      ),
    );
  }
}
