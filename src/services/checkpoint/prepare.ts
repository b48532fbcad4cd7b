import type { Checkpoint, PrepareBody, PreparedContainer } from '../../domain/checkpoint.js';
import { ValidationError } from '../../domain/errors/index.js';
import type { CheckpointContext } from './context.js';
import { readManifest } from './manifest.js';
import type { PreparedEntry } from './prepared-containers.js';
import { createRestoreTarget, fillNewContainer, newVolumes } from './restore-job.js';

/** How long a prepared container waits for the restore of its changes before it is removed. */
export const PREPARED_TTL_MS = 60 * 60_000;

/**
 * Creates the container a migration restores into, from its disk pre-copy's seed, and fills its root filesystem
 * and new volumes while the source still runs: the restore of the changes checkpoint then adds only what changed.
 */
export async function prepareFromSeed(
  ctx: CheckpointContext,
  seed: Checkpoint,
  dir: string,
  body: PrepareBody,
): Promise<PreparedContainer> {
  const { runtime, rootfs, clock } = ctx;
  if (seed.diskPreCopy?.part !== 'seed')
    throw new ValidationError(
      `checkpoint "${seed.id}" is not a disk pre-copy's seed`,
      'prepare from the seed checkpoint that a migration sends first',
    );
  const manifest = await readManifest(dir);
  const job = {
    checkpoint: seed,
    manifest,
    dir,
    body: { name: body.name, ports: body.ports },
    started: clock.now(),
    abandoned: undefined,
  };
  const volumesBefore = await runtime.volumeNames();
  const { container: created, intent } = await createRestoreTarget(ctx, job, body.name);
  const release = ctx.locks.acquire(created.id, 'restore', `container "${created.name}"`);
  try {
    const fresh = await newVolumes(ctx, volumesBefore);
    await fillNewContainer(ctx, job, created.id, fresh);
    await rootfs.flush(created.id);
    const entry: PreparedEntry = {
      containerId: created.id,
      name: created.name,
      seedId: seed.id,
      seedName: seed.name,
      fresh,
      intent,
      expiresAt: clock.now() + (ctx.preparedTtlMs ?? PREPARED_TTL_MS),
    };
    ctx.prepared.add(entry, clock.now());
    return { container: created, expiresAt: new Date(entry.expiresAt).toISOString() };
  } catch (err) {
    await runtime.remove(created.id);
    if (intent !== undefined) ctx.journal?.end(intent);
    throw err;
  } finally {
    release();
  }
}

/** Removes a prepared container that no restore will use (its seed deleted, or its time up). */
export async function dropPrepared(ctx: CheckpointContext, entry: PreparedEntry): Promise<void> {
  await ctx.runtime.remove(entry.containerId);
  if (entry.intent !== undefined) ctx.journal?.end(entry.intent);
}
