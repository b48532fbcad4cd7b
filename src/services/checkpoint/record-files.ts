import { rename } from 'node:fs/promises';
import path from 'node:path';
import { CHECKPOINT_IMAGES_DIR } from '../../domain/layout.js';
import type { ManifestEntry, MountRecord } from '../../domain/manifest.js';
import type { RootfsSource, RootfsSummary } from '../ports/rootfs-changes.js';
import type { CheckpointContext } from './context.js';
import type { Dump, DumpJob } from './dump.js';

/** What a checkpoint recorded beside CRIU's images. */
export interface RecordedFiles {
  rootfs: RootfsSummary;
  mounts: MountRecord[];
  /** Where entries are hashed now (a checkpoint about to be sent): CRIU's images, hashed meanwhile. */
  images: Promise<ManifestEntry[]> | undefined;
  /** When a freeze held for the files ended: the workload's pause. */
  pausedMs: number | undefined;
}

/**
 * CRIU's images into place, and the root filesystem's changes read while the workload is still frozen (a freeze
 * of the checkpoint's own ends right after); then the volumes.
 */
export async function recordFiles(
  ctx: CheckpointContext,
  job: DumpJob & { rootfsSource: RootfsSource; includeVolumes: boolean },
  dir: string,
  dump: Dump,
): Promise<RecordedFiles> {
  const { internals } = job;
  const since = internals.diskSince ? { since: internals.diskSince.index } : {};
  let { pausedMs } = dump;
  let rootfs: RootfsSummary;
  let images: Promise<ManifestEntry[]> | undefined;
  try {
    await rename(path.join(dir, job.id), path.join(dir, CHECKPOINT_IMAGES_DIR));
    // CRIU's images are hashed while Docker handles the exit, which the root filesystem's diff waits for.
    images = internals.hashEntries ? imageEntries(ctx, dir) : undefined;
    images?.catch(() => undefined);
    rootfs = await ctx.rootfs.record(job.rootfsSource, dir, since);
  } finally {
    if (job.holdFrozen && internals.heldBy === undefined) pausedMs = await dump.thaw();
  }
  const mounts = await ctx.rootfs.recordMounts(
    job.rootfsSource,
    dir,
    job.includeVolumes || since.since !== undefined,
    since,
  );
  return { rootfs, mounts, images, pausedMs };
}

/** The entries of CRIU's images, named as in the checkpoint directory. */
async function imageEntries(ctx: CheckpointContext, dir: string): Promise<ManifestEntry[]> {
  const entries = (await ctx.describeEntries?.(path.join(dir, CHECKPOINT_IMAGES_DIR))) ?? [];
  return entries.map((e) => ({ ...e, name: `${CHECKPOINT_IMAGES_DIR}/${e.name}` }));
}
