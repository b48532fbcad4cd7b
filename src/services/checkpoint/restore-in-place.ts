import path from 'node:path';
import type { RestoreResult } from '../../domain/checkpoint.js';
import { ContainerRunningError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR } from '../../domain/layout.js';
import type { CheckpointContext } from './context.js';
import { criuOf } from './manifest.js';
import { originalContainer, type RestoreJob } from './restore-job.js';

/** Restores CRIU's images into the (stopped) container they were taken of. */
export async function restoreInPlace(ctx: CheckpointContext, job: RestoreJob): Promise<RestoreResult> {
  const { checkpoint, manifest, dir, started } = job;
  const container = await originalContainer(ctx, checkpoint);
  const release = ctx.locks.acquire(container.id, 'restore', `container "${container.name}"`);
  try {
    if (container.running) throw new ContainerRunningError(container.name);
    await ctx.runtime.restore(container.id, path.join(dir, CHECKPOINT_IMAGES_DIR), criuOf(manifest));
  } finally {
    release();
  }
  return { container: { id: container.id, name: container.name }, restoreMs: ctx.clock.now() - started };
}
