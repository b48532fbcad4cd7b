import type { Checkpoint, DiskPreCopy, MigrationMark } from '../../domain/checkpoint.js';
import { fallbackSpec } from '../support/engine-configs.js';
import { publishCheckpoint } from './publish-checkpoint.js';
import type { DiskIndex } from '../ports/rootfs-changes.js';
import { beginCheckpoint, checkpointRecord } from './begin-checkpoint.js';
import type { CheckpointContext } from './context.js';
import { writeMetadata } from './manifest.js';

/** A disk pre-copy's seed, and what it recorded of each path, for the changes checkpoint that follows it. */
export interface DiskSeed {
  checkpoint: Checkpoint;
  index: DiskIndex;
}

/**
 * The first part of a disk pre-copy: the container's root-filesystem changes and its volumes, read while it runs
 * (nothing is frozen), with Docker's config to create the target's container from. It holds no process.
 */
export async function createDiskSeed(
  ctx: CheckpointContext,
  ref: string,
  name: string,
  migration: MigrationMark,
): Promise<DiskSeed> {
  const { runtime, catalog, store, clock } = ctx;
  const start = await beginCheckpoint(ctx, ref, name);
  const { container, id, started, release } = start;
  try {
    const [source, spec, imageLayers] = await Promise.all([
      ctx.rootfs.prepare(container.id),
      runtime.runtimeSpec(container.id),
      runtime.imageLayers(container.imageId),
    ]);
    const index: DiskIndex = { rootfs: new Map(), volumes: new Map() };
    const createdAt = new Date(started);
    const diskPreCopy: DiskPreCopy = { part: 'seed', seed: name };
    const checkpoint = await publishCheckpoint({ store, catalog }, id, {
      fill: async (dir) => {
        const rootfs = await ctx.rootfs.record(source, dir, { seed: index });
        const mounts = await ctx.rootfs.recordMounts(source, dir, true, { seed: index });
        await writeMetadata(dir, {
          container,
          spec: spec ?? fallbackSpec(container.config),
          imageLayers,
          createdAt,
          source: { ...ctx.host, criuVersion: '' },
          mounts,
          rootfs,
          checkpoint: { id, name, leaveRunning: true, dumpMs: 0, processImage: false, diskPreCopy },
        });
      },
      describe: (_filled, sizeBytes) =>
        checkpointRecord(start, createdAt, {
          leaveRunning: true,
          processImage: false,
          diskPreCopy,
          migration,
          sizeBytes,
          stats: { dumpMs: 0, totalMs: clock.now() - started },
        }),
    });
    return { checkpoint, index };
  } finally {
    release();
  }
}
