import path from 'node:path';
import type { RestoreResult } from '../../domain/checkpoint.js';
import { PreCopyPartError, RestoreAbandonedError, ValidationError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR } from '../../domain/layout.js';
import type { CheckpointContext } from './context.js';
import { criuOf } from './manifest.js';
import type { PreparedEntry } from './prepared-containers.js';
import { createRestoreTarget, fillNewContainer, newVolumes, type RestoreJob } from './restore-job.js';

/** How long a lazy restore's pages may take to arrive, all of them, before its container is killed. */
const DEFAULT_LAZY_PAGES_TIMEOUT_S = 600;

/**
 * Restores CRIU's images into a new container named `name`, with the root-filesystem changes and volumes;
 * `replacing`: a container that takes the original's place, with its host ports and volumes.
 */
export async function restoreAsNew(
  ctx: CheckpointContext,
  job: RestoreJob,
  name: string,
  replacing = false,
): Promise<RestoreResult> {
  const { manifest, dir, started, abandoned } = job;
  const { runtime, clock } = ctx;
  const prepared = takePrepared(ctx, job, name);
  const volumesBefore = prepared ? undefined : await runtime.volumeNames();
  // Should cryo die before it answers, its next start removes the container (the journal entry `intent`).
  const { container: created, intent } = prepared
    ? { container: { id: prepared.containerId, name: prepared.name }, intent: prepared.intent }
    : await createRestoreTarget(ctx, job, name, { replacing });
  const release = ctx.locks.acquire(created.id, 'restore', `container "${created.name}"`);
  try {
    await fillNewContainer(ctx, job, created.id, prepared?.fresh ?? (await newVolumes(ctx, volumesBefore!)));
    if (abandoned?.aborted) throw new RestoreAbandonedError(created.name);
    const lazy = job.body.lazyPages && {
      ...job.body.lazyPages,
      timeoutSeconds: ctx.lazyPagesTimeoutSeconds ?? DEFAULT_LAZY_PAGES_TIMEOUT_S,
    };
    await runtime.restore(created.id, path.join(dir, CHECKPOINT_IMAGES_DIR), criuOf(manifest), lazy);
    // Nobody can learn that it runs: a migration's source has rolled back, so this copy must not run on.
    if (abandoned?.aborted) throw new RestoreAbandonedError(created.name);
  } catch (err) {
    // A failed or abandoned restore leaves nothing behind: the new container is removed (killed if it ran).
    await runtime.remove(created.id);
    throw err;
  } finally {
    release();
    if (intent !== undefined) ctx.journal?.end(intent);
  }
  return { container: created, restoreMs: clock.now() - started };
}

/**
 * The changes part of a disk pre-copy completes the container prepared from its seed; it holds too little for any
 * other new container.
 */
function takePrepared(ctx: CheckpointContext, job: RestoreJob, name: string): PreparedEntry | undefined {
  const { checkpoint } = job;
  const wanted = job.body.prepared;
  const part = checkpoint.diskPreCopy;
  if (part?.part !== 'changes') return undefined;
  if (wanted === undefined) throw new PreCopyPartError(checkpoint.id, 'changes');
  const entry = ctx.prepared.get(wanted);
  if (!entry)
    throw new PreCopyPartError(
      checkpoint.id,
      'changes',
      `no container ${wanted} waits here for it (its time ran out, its seed was deleted, or cryo restarted)`,
    );
  if (entry.seedName !== part.seed)
    throw new PreCopyPartError(
      checkpoint.id,
      'changes',
      `container ${wanted} was prepared from seed "${entry.seedName}", not from "${part.seed}"`,
    );
  if (entry.name !== name)
    throw new ValidationError(
      `the prepared container is named "${entry.name}", not "${name}"`,
      'give the name it was prepared with',
    );
  return ctx.prepared.take(wanted);
}
