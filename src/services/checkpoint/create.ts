import { rename } from 'node:fs/promises';
import path from 'node:path';
import type {
  ApplicationMode,
  Checkpoint,
  ContainerCriuOptions,
  CreateCheckpointBody,
  DiskPreCopy,
  MigrationMark,
} from '../../domain/checkpoint.js';
import { AppError, PreflightFailedError } from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import { CHECKPOINT_IMAGES_DIR, CRYO_MANIFEST } from '../../domain/layout.js';
import type { ManifestEntry } from '../../domain/manifest.js';
import type {
  ContainerInfo,
  PageServerAddress,
  RuntimeCheckpointResult,
} from '../ports/container-runtime.js';
import type { DiskIndex, RootfsSummary } from '../ports/rootfs-changes.js';
import { fallbackSpec } from '../support/engine-configs.js';
import { publishCheckpoint } from './publish-checkpoint.js';
import type { ApplicationCut, SidecarService } from '../sidecar/sidecar-service.js';
import { beginCheckpoint, checkpointRecord } from './begin-checkpoint.js';
import { requireSidecar, type CheckpointContext } from './context.js';
import { applicationOf, buildManifest, writeConfigs, writeJson } from './manifest.js';

export type CreateCheckpointOptions = Pick<CreateCheckpointBody, 'leaveRunning'> &
  Partial<Omit<CreateCheckpointBody, 'leaveRunning'>>;

export interface CreateCheckpointInternals {
  /**
   * Hash every entry for cryo.json now, while Docker handles the exit, rather than on the first export: a
   * checkpoint that is about to be sent (a migration) saves a full read of its images during the downtime.
   */
  hashEntries?: boolean;
  /** Called as the dump starts: the workload stops answering from here. */
  onFreeze?: () => void;
  /**
   * A migration that keeps the container frozen once the checkpoint is published (a leave-running dump): it ends
   * the freeze itself, stopping the container once the target runs it, or thawing it. Thawed on any failure here.
   */
  heldBy?: string;
  /**
   * With heldBy: dump everything but the memory pages and serve those from the frozen tasks at this address
   * (post-copy); `onPages` gets the page server's handle. The checkpoint is marked lazyPages: it holds no pages.
   */
  lazyPages?: { server: PageServerAddress; onPages: (pages: ServedPages) => void };
  /**
   * The second part of a disk pre-copy: only the files that changed since this seed (named `seed`) are recorded,
   * with the paths it sent that are gone since. The checkpoint is marked diskPreCopy changes.
   */
  diskSince?: { seed: string; index: DiskIndex };
  /** The migration this checkpoint is for: the catalog marks it, and that migration's sweeper removes it. */
  migration?: MigrationMark;
}

/** The page server of a post-copy checkpoint: it ends when its peer has taken the pages, or ends it early. */
export interface ServedPages {
  served: Promise<void>;
  abort: () => Promise<void>;
}

/** Checkpoints a running container: CRIU's images, its root-filesystem changes, and its job's operator state. */
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
    if (application === 'only' && sidecar) {
      return await createApplicationOnly(ctx, {
        container,
        id,
        name,
        started,
        mode: applicationMode,
        sidecar,
      });
    }
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
    const spec = runtimeSpec ?? fallbackSpec(container.config);
    const createdAt = new Date(started);
    let cut: ApplicationCut | undefined;
    // Should cryo die before the checkpoint is published, its next start runs the container again.
    const stopping = body.leaveRunning
      ? undefined
      : ctx.journal?.begin({
          kind: HostIntentKind.STOP_MODE_CHECKPOINT,
          containerId: container.id,
          checkpointId: id,
        });
    const held = internals.heldBy;
    const since = internals.diskSince ? { since: internals.diskSince.index } : {};
    const diskPreCopy: DiskPreCopy | undefined = internals.diskSince && {
      part: 'changes',
      seed: internals.diskSince.seed,
    };
    // Ends the freeze that a migration would have kept, should the checkpoint fail after its dump.
    let thawHeld: (() => Promise<unknown>) | undefined;
    const published = publishCheckpoint({ store, catalog }, id, {
      fill: async (dir) => {
        // The operator cut comes first, and its connection is closed before CRIU looks at the sockets.
        if (sidecar) {
          cut = await sidecar.cut(container.pid, {
            dir,
            publishedDir: store.path(id),
            mode: applicationMode,
            keepOpen: false,
          });
        }
        const dumpStarted = clock.now();
        internals.onFreeze?.();
        // Files read while the workload is frozen agree with its memory; a stopped workload writes nothing anyway.
        const holdFrozen = (body.leaveRunning && (body.consistentRootfs ?? true)) || held !== undefined;
        let dumped: RuntimeCheckpointResult;
        try {
          dumped = await runtime.checkpoint(container.id, {
            checkpointId: id,
            parentDir: dir,
            exit: !body.leaveRunning,
            holdFrozen,
            ...(held !== undefined ? { heldBy: held } : {}),
            ...(internals.lazyPages ? { lazyPages: internals.lazyPages.server } : {}),
            criu,
          });
        } catch (err) {
          // A failed checkpoint must never leave the container paused or frozen.
          await runtime.ensureNotFrozen(container.id);
          throw err;
        }
        const dumpMs = clock.now() - dumpStarted;
        // Ends the pause: the freeze that holdFrozen kept, and whatever a leave-running dump left paused (after a
        // stop-mode dump CRIU has killed the tasks, and `settled` waits for Docker to see that).
        const thaw = async (): Promise<number | undefined> => {
          await dumped.thaw();
          if (!body.leaveRunning) return undefined;
          await runtime.ensureNotFrozen(container.id);
          return clock.now() - dumpStarted;
        };
        let pausedMs = holdFrozen ? undefined : await thaw();
        if (held !== undefined) thawHeld = thaw;
        if (internals.lazyPages) {
          if (!dumped.pages) throw new Error('the runtime did not start a page server for the lazy dump');
          const pages = dumped.pages;
          // A checkpoint that fails from here on ends the page server first: nobody will fetch its pages.
          thawHeld = async () => {
            await pages.abort();
            await thaw();
          };
          internals.lazyPages.onPages(pages);
        }
        try {
          let rootfs: RootfsSummary;
          let images: Promise<ManifestEntry[]> | undefined;
          try {
            await rename(path.join(dir, id), path.join(dir, CHECKPOINT_IMAGES_DIR));
            // CRIU's images are hashed while Docker handles the exit, which the root filesystem's diff waits for.
            images = internals.hashEntries ? imageEntries(ctx, dir) : undefined;
            images?.catch(() => undefined);
            rootfs = await ctx.rootfs.record(rootfsSource, dir, since);
          } finally {
            if (holdFrozen && held === undefined) pausedMs = await thaw();
          }
          const mounts = await ctx.rootfs.recordMounts(
            rootfsSource,
            dir,
            (body.includeVolumes ?? false) || since.since !== undefined,
            since,
          );
          await writeConfigs(dir, container, createdAt, spec);
          const entries =
            internals.hashEntries && ctx.describeEntries ? await ctx.describeEntries(dir, await images) : [];
          await writeJson(
            path.join(dir, CRYO_MANIFEST),
            buildManifest({
              container,
              imageLayers,
              createdAt,
              source: { ...ctx.host, criuVersion },
              mounts,
              rootfs,
              checkpoint: {
                id,
                name,
                leaveRunning: body.leaveRunning,
                dumpMs,
                criu,
                ...(internals.lazyPages ? { lazyPages: true } : {}),
                ...(diskPreCopy ? { diskPreCopy } : {}),
                ...(cut ? { application: applicationOf(cut) } : {}),
              },
              entries,
            }),
          );
        } catch (err) {
          await dumped.settled.catch(() => undefined);
          throw err;
        }
        return { dumpMs, dumped, pausedMs };
      },
      describe: ({ dumpMs, dumped, pausedMs }, sizeBytes) =>
        checkpointRecord(start, createdAt, {
          leaveRunning: body.leaveRunning,
          ...(cut ? { application: applicationOf(cut) } : {}),
          ...(internals.lazyPages ? { lazyPages: true } : {}),
          ...(diskPreCopy ? { diskPreCopy } : {}),
          ...(internals.migration ? { migration: internals.migration } : {}),
          sizeBytes,
          stats: {
            dumpMs,
            totalMs: clock.now() - started,
            ...dumped.stats,
            path: dumped.path,
            ...(pausedMs !== undefined ? { pausedMs } : {}),
          },
        }),
      // Docker handles the container's exit while the images are fsynced.
      settle: ({ dumped }) => dumped.settled,
    });
    // The job commits the cut's output only once the checkpoint is published; a stopped job will on restore.
    let checkpoint: Checkpoint;
    try {
      checkpoint = await published;
    } catch (err) {
      await thawHeld?.();
      if (sidecar && cut && body.leaveRunning) await sidecar.finish(container.pid, cut, 'abort');
      throw body.leaveRunning ? err : await bringBack(ctx, container.id, err);
    } finally {
      if (stopping !== undefined) ctx.journal?.end(stopping);
    }
    if (sidecar && cut && body.leaveRunning) await sidecar.finish(container.pid, cut, 'complete');
    return checkpoint;
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

interface ApplicationOnlyJob {
  container: ContainerInfo;
  id: string;
  name: string;
  started: number;
  mode: ApplicationMode;
  sidecar: SidecarService;
}

/** `application: "only"`: the job's operator state without CRIU; nothing is frozen. */
async function createApplicationOnly(ctx: CheckpointContext, job: ApplicationOnlyJob): Promise<Checkpoint> {
  const { container, id, name, started, mode, sidecar } = job;
  const { catalog, store, clock, runtime } = ctx;
  const createdAt = new Date(started);
  const spec = (await runtime.runtimeSpec(container.id)) ?? fallbackSpec(container.config);
  let cut: ApplicationCut | undefined;
  let checkpoint: Checkpoint;
  try {
    checkpoint = await publishCheckpoint({ store, catalog }, id, {
      fill: async (dir) => {
        cut = await sidecar.cut(container.pid, { dir, publishedDir: store.path(id), mode, keepOpen: true });
        const dumpMs = clock.now() - started;
        await writeConfigs(dir, container, createdAt, spec);
        await writeJson(
          path.join(dir, CRYO_MANIFEST),
          buildManifest({
            container,
            imageLayers: await runtime.imageLayers(container.imageId),
            createdAt,
            source: { ...ctx.host, criuVersion: '' },
            mounts: [],
            rootfs: { changed: 0, deleted: 0 },
            checkpoint: {
              id,
              name,
              leaveRunning: true,
              dumpMs,
              processImage: false,
              application: applicationOf(cut),
            },
          }),
        );
        return { dumpMs, cut };
      },
      describe: ({ dumpMs, cut: c }, sizeBytes) =>
        checkpointRecord(job, createdAt, {
          leaveRunning: true,
          processImage: false,
          application: applicationOf(c),
          sizeBytes,
          stats: { dumpMs, totalMs: clock.now() - started },
        }),
    });
  } catch (err) {
    if (cut) await sidecar.finish(container.pid, cut, 'abort');
    throw err;
  }
  await sidecar.finish(container.pid, cut!, 'complete');
  return checkpoint;
}

/** The entries of CRIU's images, named as in the checkpoint directory. */
async function imageEntries(ctx: CheckpointContext, dir: string): Promise<ManifestEntry[]> {
  const entries = (await ctx.describeEntries?.(path.join(dir, CHECKPOINT_IMAGES_DIR))) ?? [];
  return entries.map((e) => ({ ...e, name: `${CHECKPOINT_IMAGES_DIR}/${e.name}` }));
}

/** Room for the dump beside the checkpoints: its processes' resident memory, and a margin for the rest. */
const SPACE_MARGIN_BYTES = 64 * 1024 * 1024;

async function requireSpace(ctx: CheckpointContext, pid: number): Promise<void> {
  if (!ctx.inspector) return;
  await ctx.guard.require('checkpoint', (await ctx.inspector.residentBytes(pid)) + SPACE_MARGIN_BYTES);
}
