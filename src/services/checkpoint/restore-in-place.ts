import path from 'node:path';
import type { RestoreResult } from '../../domain/checkpoint.js';
import { ContainerRunningError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR } from '../../domain/layout.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import { withIntent } from '../ports/host-journal.js';
import type { CheckpointContext } from './context.js';
import { criuOf } from './manifest.js';
import { restoreAsNew } from './restore-as-new.js';
import { originalContainer, type RestoreJob } from './restore-job.js';

/** The name a replacing container has until the original is gone. */
const REPLACEMENT_SUFFIX = '.cryo-restore';

/**
 * Restores CRIU's images into the (stopped) container they were taken of. A container whose runtime cannot restore
 * it in place (runc on Docker 28, or with CRIU options runc would read from /etc/criu/runc.conf) is replaced by a
 * new one under cryo's runtime, with the same name, config, host ports and volumes, but a new id.
 */
export async function restoreInPlace(ctx: CheckpointContext, job: RestoreJob): Promise<RestoreResult> {
  const { checkpoint, manifest, dir, started } = job;
  const container = await originalContainer(ctx, checkpoint);
  const release = ctx.locks.acquire(container.id, 'restore', `container "${container.name}"`);
  try {
    if (container.running) throw new ContainerRunningError(container.name);
    const criu = criuOf(manifest);
    if (!(await ctx.runtime.restoresInPlace(container.id, criu))) return await replace(ctx, job, container);
    await ctx.runtime.restore(container.id, path.join(dir, CHECKPOINT_IMAGES_DIR), criu);
  } finally {
    release();
  }
  return { container: { id: container.id, name: container.name }, restoreMs: ctx.clock.now() - started };
}

/**
 * The replacement runs before the original goes: a failure leaves the original as it was. After a crash the
 * journal removes a replacement that never answered, and renames one whose original is already gone.
 */
async function replace(
  ctx: CheckpointContext,
  job: RestoreJob,
  original: ContainerInfo,
): Promise<RestoreResult> {
  const restored = await restoreAsNew(ctx, job, `${original.name}${REPLACEMENT_SUFFIX}`, true);
  const id = restored.container!.id;
  await withIntent(
    ctx.journal,
    { kind: HostIntentKind.REPLACEMENT_NAME, containerId: id, name: original.name },
    async () => {
      await ctx.runtime.remove(original.id);
      await ctx.runtime.rename(id, original.name);
    },
  );
  return { ...restored, container: { id, name: original.name }, replaced: original.id };
}
