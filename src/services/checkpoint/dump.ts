import type { ApplicationMode, ContainerCriuOptions } from '../../domain/checkpoint.js';
import type { ContainerInfo, RuntimeCheckpointResult } from '../ports/container-runtime.js';
import type { ApplicationCut, SidecarService } from '../sidecar/sidecar-service.js';
import type { CheckpointContext } from './context.js';
import type { CreateCheckpointInternals } from './create-options.js';

/** What a dump is asked for: the container, its options, and whether its freeze outlives the dump. */
export interface DumpJob {
  container: ContainerInfo;
  id: string;
  criu: ContainerCriuOptions;
  leaveRunning: boolean;
  /** Files read while the workload is frozen agree with its memory (a leave-running dump's rootfs). */
  holdFrozen: boolean;
  sidecar: SidecarService | undefined;
  applicationMode: ApplicationMode;
  internals: CreateCheckpointInternals;
}

/** A dump done: CRIU's images in `dir/<id>`, and how to end the pause it left. */
export interface Dump {
  dumped: RuntimeCheckpointResult;
  dumpMs: number;
  /** Set where the dump did not hold the workload frozen: it has run on since. */
  pausedMs: number | undefined;
  /** Ends the pause: the freeze that holdFrozen kept, and whatever a leave-running dump left paused. */
  thaw: () => Promise<number | undefined>;
}

/**
 * What a failed checkpoint must undo once its dump has run: the job's operator cut to abort, and the freeze that
 * a migration would have kept (with its page server). Filled in as the dump goes; read by the caller's failure path.
 */
export interface DumpUndo {
  cut?: ApplicationCut;
  thawHeld?: () => Promise<unknown>;
}

/**
 * The operator cut (first, and its connection closed before CRIU looks at the sockets), then CRIU's dump. A dump
 * that fails never leaves the container paused or frozen.
 */
export async function dumpContainer(
  ctx: CheckpointContext,
  job: DumpJob,
  dir: string,
  undo: DumpUndo,
): Promise<Dump> {
  const { runtime, store, clock } = ctx;
  const { container, internals, leaveRunning, holdFrozen } = job;
  if (job.sidecar) {
    undo.cut = await job.sidecar.cut(container.pid, {
      dir,
      publishedDir: store.path(job.id),
      mode: job.applicationMode,
      keepOpen: false,
    });
  }
  const dumpStarted = clock.now();
  internals.onFreeze?.();
  const held = internals.heldBy;
  let dumped: RuntimeCheckpointResult;
  try {
    dumped = await runtime.checkpoint(container.id, {
      checkpointId: job.id,
      parentDir: dir,
      exit: !leaveRunning,
      holdFrozen,
      ...(held !== undefined ? { heldBy: held } : {}),
      ...(internals.lazyPages ? { lazyPages: internals.lazyPages.server } : {}),
      criu: job.criu,
    });
  } catch (err) {
    await runtime.ensureNotFrozen(container.id);
    throw err;
  }
  const dumpMs = clock.now() - dumpStarted;
  // After a stop-mode dump CRIU has killed the tasks, and `settled` waits for Docker to see that.
  const thaw = async (): Promise<number | undefined> => {
    await dumped.thaw();
    if (!leaveRunning) return undefined;
    await runtime.ensureNotFrozen(container.id);
    return clock.now() - dumpStarted;
  };
  const pausedMs = holdFrozen ? undefined : await thaw();
  if (held !== undefined) undo.thawHeld = thaw;
  if (internals.lazyPages) {
    if (!dumped.pages) throw new Error('the runtime did not start a page server for the lazy dump');
    const pages = dumped.pages;
    // A checkpoint that fails from here on ends the page server first: nobody will fetch its pages.
    undo.thawHeld = async () => {
      await pages.abort();
      await thaw();
    };
    internals.lazyPages.onPages(pages);
  }
  return { dumped, dumpMs, pausedMs, thaw };
}
