import type { Checkpoint, ContainerCriuOptions, DiskPreCopy } from '../../domain/checkpoint.js';
import { AppError, PreflightFailedError } from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import { fallbackSpec } from '../support/engine-configs.js';
import { beginCheckpoint, checkpointRecord } from './begin-checkpoint.js';
import { requireChain, requireSidecar, type CheckpointContext } from './context.js';
import { createApplicationOnly } from './create-application-only.js';
import { dumpContainer, type Dump, type DumpJob, type DumpUndo } from './dump.js';
import { applicationOf, writeMetadata } from './manifest.js';
import { publishCheckpoint } from './publish-checkpoint.js';
import { recordFiles, type RecordedFiles } from './record-files.js';
import { chooseParent } from './chain.js';
import { recordChain } from './record-chain.js';
import type { CheckpointChain } from '../../domain/checkpoint.js';

import type { CreateCheckpointInternals, CreateCheckpointOptions } from './create-options.js';

export type { CreateCheckpointInternals, CreateCheckpointOptions, ServedPages } from './create-options.js';

/**
 * Checkpoints a running container: dump (the operator cut, then CRIU), record files (its images, the root
 * filesystem's changes, its volumes), then publish (metadata written, fsync, rename into the catalog).
 */
export async function createCheckpoint(
  ctx: CheckpointContext,
  ref: string,
  body: CreateCheckpointOptions,
  internals: CreateCheckpointInternals = {},
): Promise<Checkpoint> {
  const { runtime, catalog, store, clock } = ctx;
  const start = await beginCheckpoint(ctx, ref, body.name);
  const { container, id, name, started, release } = start;
  try {
    const criu: ContainerCriuOptions = {
      tcpEstablished: body.tcpEstablished ?? false,
      fileLocks: body.fileLocks ?? false,
      externalUnixSockets: body.externalUnixSockets ?? false,
      ...(body.ghostLimitBytes !== undefined ? { ghostLimitBytes: body.ghostLimitBytes } : {}),
    };
    const application = body.application ?? false;
    const applicationMode = body.applicationMode ?? 'exactly_once';
    const sidecar = application ? requireSidecar(ctx) : undefined;
    if (application === 'only' && sidecar)
      return await createApplicationOnly(ctx, {
        container,
        id,
        name,
        started,
        mode: applicationMode,
        sidecar,
      });
    // A migration's checkpoints are sent whole; a chain is for checkpoints kept here.
    const chained =
      (body.incremental || body.parent !== undefined) &&
      !internals.migration &&
      !internals.lazyPages &&
      !internals.diskSince;
    const parent = chained ? chooseParent(catalog, container.id, body) : undefined;
    // The parent stays as it is (no delete, no rebase) until this level is published.
    const parentLease = parent ? ctx.leases.take(parent.id) : undefined;
    try {
      const processes = body.force ? undefined : ctx.processes;
      // Whatever would make the checkpoint fail after the workload stops is asked before anything is frozen.
      const [criuVersion, preflight, runtimeSpec, rootfsSource, imageLayers] = await Promise.all([
        ctx.support.require(),
        processes?.preflightOf(container, criu),
        runtime.runtimeSpec(container.id),
        ctx.rootfs.prepare(container.id),
        runtime.imageLayers(container.imageId),
        requireSpace(ctx, container.pid),
      ]);
      if (preflight && !preflight.checkpointable) throw new PreflightFailedError(preflight.problems);
      const createdAt = new Date(started);
      const job: DumpJob & Parameters<typeof recordFiles>[1] = {
        container,
        id,
        criu,
        leaveRunning: body.leaveRunning,
        holdFrozen: (body.leaveRunning && (body.consistentRootfs ?? true)) || internals.heldBy !== undefined,
        sidecar,
        applicationMode,
        internals,
        rootfsSource,
        includeVolumes: body.includeVolumes ?? false,
      };
      const diskPreCopy: DiskPreCopy | undefined = internals.diskSince && {
        part: 'changes',
        seed: internals.diskSince.seed,
      };
      // Should cryo die before the checkpoint is published, its next start runs the container again.
      const stopping = body.leaveRunning
        ? undefined
        : ctx.journal?.begin({
            kind: HostIntentKind.STOP_MODE_CHECKPOINT,
            containerId: container.id,
            checkpointId: id,
          });
      const undo: DumpUndo = {};
      const published = publishCheckpoint({ store, catalog }, id, {
        fill: async (dir): Promise<{ dump: Dump; files: RecordedFiles; chain?: CheckpointChain }> => {
          const dump = await dumpContainer(ctx, job, dir, undo);
          try {
            const files = await recordFiles(ctx, job, dir, dump);
            const level = chained
              ? await recordChain({ chain: requireChain(ctx), store, id, parent }, dir)
              : undefined;
            await writeMetadata(
              dir,
              {
                container,
                spec: runtimeSpec ?? fallbackSpec(container.config),
                imageLayers,
                createdAt,
                source: { ...ctx.host, criuVersion },
                mounts: files.mounts,
                rootfs: files.rootfs,
                checkpoint: {
                  id,
                  name,
                  leaveRunning: body.leaveRunning,
                  dumpMs: dump.dumpMs,
                  criu,
                  ...(internals.lazyPages ? { lazyPages: true } : {}),
                  ...(diskPreCopy ? { diskPreCopy } : {}),
                  ...(undo.cut ? { application: applicationOf(undo.cut) } : {}),
                  ...(parent
                    ? { parent: { id: parent.id, name: parent.name, createdAt: parent.createdAt } }
                    : {}),
                },
              },
              // Every file hashed once it is there (CRIU's images were meanwhile); else on the first export.
              internals.hashEntries && ctx.describeEntries
                ? async () => ctx.describeEntries!(dir, await files.images)
                : undefined,
            );
            return level
              ? { dump, files, chain: { ...level.chain, ownBytes: await level.own() } }
              : { dump, files };
          } catch (err) {
            await dump.dumped.settled.catch(() => undefined);
            throw err;
          }
        },
        describe: ({ dump, files, chain }, sizeBytes) =>
          checkpointRecord(start, createdAt, {
            leaveRunning: body.leaveRunning,
            ...(undo.cut ? { application: applicationOf(undo.cut) } : {}),
            ...(internals.lazyPages ? { lazyPages: true } : {}),
            ...(diskPreCopy ? { diskPreCopy } : {}),
            ...(internals.migration ? { migration: internals.migration } : {}),
            ...(chain ? { chain } : {}),
            sizeBytes,
            stats: {
              dumpMs: dump.dumpMs,
              totalMs: clock.now() - started,
              ...dump.dumped.stats,
              path: dump.dumped.path,
              ...(files.pausedMs !== undefined ? { pausedMs: files.pausedMs } : {}),
            },
          }),
        // Docker handles the container's exit while the images are fsynced.
        settle: ({ dump }) => dump.dumped.settled,
      });
      // The job commits the cut's output only once the checkpoint is published; a stopped job will on restore.
      let checkpoint: Checkpoint;
      try {
        checkpoint = await published;
      } catch (err) {
        await undo.thawHeld?.();
        if (sidecar && undo.cut && body.leaveRunning) await sidecar.finish(container.pid, undo.cut, 'abort');
        throw body.leaveRunning ? err : await bringBack(ctx, container.id, err);
      } finally {
        if (stopping !== undefined) ctx.journal?.end(stopping);
      }
      if (sidecar && undo.cut && body.leaveRunning) await sidecar.finish(container.pid, undo.cut, 'complete');
      return checkpoint;
    } finally {
      parentLease?.();
    }
  } finally {
    release();
  }
}

/**
 * A stop-mode checkpoint failed after its dump may have stopped the container: the workload is started again
 * (afresh: no checkpoint was kept), and the error says so.
 */
async function bringBack(ctx: CheckpointContext, containerId: string, err: unknown): Promise<unknown> {
  const now = await ctx.runtime.inspect(containerId).catch(() => undefined);
  if (!now || now.running) return err;
  let restarted = true;
  await ctx.runtime.start(containerId).catch(() => (restarted = false));
  return err instanceof AppError
    ? err.addDetails({ containerRestarted: restarted, container: containerId })
    : err;
}

/** Room for the dump beside the checkpoints: its processes' resident memory, and a margin for the rest. */
const SPACE_MARGIN_BYTES = 64 * 1024 * 1024;

async function requireSpace(ctx: CheckpointContext, pid: number): Promise<void> {
  if (!ctx.inspector) return;
  await ctx.guard.require('checkpoint', (await ctx.inspector.residentBytes(pid)) + SPACE_MARGIN_BYTES);
}
