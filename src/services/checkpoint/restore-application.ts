import type { Checkpoint, RestoreResult } from '../../domain/checkpoint.js';
import { logged } from '../support/background.js';
import {
  ApplicationRestoreFailedError,
  ContainerRunningError,
  RestoreAbandonedError,
} from '../../domain/errors/index.js';
import { SIDECAR_RESTORE_MARKER } from '../../domain/sidecar/protocol.js';
import { requireSidecar, type CheckpointContext } from './context.js';
import { createRestoreTarget, originalContainer, type RestoreJob } from './restore-job.js';

/**
 * Starts the container afresh, with a marker that makes the SDK wait, and hands the job its operator state:
 * each subtask's key groups and the sources' offsets. On failure the new container is removed, or the
 * original one stopped again; the checkpoint stays.
 */
export async function restoreApplication(ctx: CheckpointContext, job: RestoreJob): Promise<RestoreResult> {
  const { checkpoint, dir, body, started, abandoned } = job;
  const { runtime, rootfs, clock } = ctx;
  const sidecar = requireSidecar(ctx);
  const application = checkpoint.application!;
  let target: { id: string; name: string };
  let created = false;
  let intent: number | undefined;
  if (body.name === undefined) {
    const container = await originalContainer(ctx, checkpoint);
    if (container.running) throw new ContainerRunningError(container.name);
    target = { id: container.id, name: container.name };
  } else {
    ({ container: target, intent } = await createRestoreTarget(ctx, job, body.name, { env: body.env }));
    created = true;
  }
  const release = ctx.locks.acquire(target.id, 'restore', `container "${target.name}"`);
  try {
    if (created && checkpoint.processImage !== false) await rootfs.apply(target.id, dir);
    await runtime.putFile(
      target.id,
      SIDECAR_RESTORE_MARKER,
      Buffer.from(JSON.stringify({ checkpoint: checkpoint.id, checkpointId: application.checkpointId })),
    );
    await runtime.start(target.id);
    const info = await runtime.inspect(target.id);
    if (!info?.running) throw new ApplicationRestoreFailedError(`container "${target.name}" exited at start`);
    const loaded = await sidecar.restore(info.pid, dir);
    if (abandoned?.aborted) throw new RestoreAbandonedError(target.name);
    return { container: target, restoreMs: clock.now() - started, application: loaded };
  } catch (err) {
    if (created) await runtime.remove(target.id);
    else
      await runtime.stop(target.id).catch(logged(ctx.log, `stopping ${target.name} after a failed restore`));
    throw err;
  } finally {
    release();
    if (intent !== undefined) ctx.journal?.end(intent);
  }
}

/** The restored process's cut was never confirmed to it: `complete` lets its sink commit that epoch. */
export async function notifyRestored(
  ctx: CheckpointContext,
  containerId: string,
  checkpoint: Checkpoint,
): Promise<void> {
  const info = await ctx.runtime.inspect(containerId);
  if (!info?.running || !checkpoint.application) return;
  await requireSidecar(ctx).finish(
    info.pid,
    { checkpointId: checkpoint.application.checkpointId, channel: undefined },
    'complete',
  );
}
