import type { Checkpoint, RestoreBody, RestoreResult } from '../../domain/checkpoint.js';
import {
  AppError,
  ChainBrokenError,
  ErrorCode,
  PagesNotInCheckpointError,
  PreCopyPartError,
  RestoreModeUnavailableError,
  ValidationError,
} from '../../domain/errors/index.js';
import { requireHostFits } from '../../domain/host-fit.js';
import { requireChain, type CheckpointContext } from './context.js';
import { CHECKPOINT_IMAGES_DIR } from '../../domain/layout.js';
import path from 'node:path';
import { readManifest } from './manifest.js';
import { notifyRestored, restoreApplication } from './restore-application.js';
import { restoreAsNew } from './restore-as-new.js';
import { restoreInPlace } from './restore-in-place.js';
import type { RestoreJob } from './restore-job.js';

/** Failures after which mode auto restores the operator state instead: CRIU or this host cannot. */
const FALLBACK_CODES = new Set<ErrorCode>([
  ErrorCode.CRIU_FAILED,
  ErrorCode.CRIU_UNAVAILABLE,
  ErrorCode.HOST_MISMATCH,
  ErrorCode.DOCKER_NOT_EXPERIMENTAL,
  ErrorCode.DOCKER_FAILED,
]);

export interface RestoreRequest {
  checkpoint: Checkpoint;
  dir: string;
  body: RestoreBody;
  started: number;
  /** Aborts when the caller has gone (only with body.abandonOnDisconnect). */
  abandoned: AbortSignal | undefined;
}

/**
 * Picks how a checkpoint restores: a process tree through the process service; a container's CRIU image in
 * place or as new; or its job's operator state, also as the fallback of mode auto when CRIU or this host cannot.
 */
export async function restoreCheckpoint(
  ctx: CheckpointContext,
  request: RestoreRequest,
): Promise<RestoreResult> {
  const { checkpoint, dir, body } = request;
  if (checkpoint.kind === 'process') {
    if (!ctx.processes) throw new Error('process restores are not wired');
    return ctx.processes.restore(dir);
  }
  requirePreCopyFits(checkpoint, body);
  if (checkpoint.chain?.parent !== undefined) await requireChainIntact(ctx, checkpoint, dir);
  const hasImage = checkpoint.processImage !== false;
  const mode = body.mode ?? (hasImage ? 'process' : 'application');
  if (mode === 'process' && !hasImage) throw new RestoreModeUnavailableError(checkpoint.id, 'process');
  if (mode === 'application' && !checkpoint.application)
    throw new RestoreModeUnavailableError(checkpoint.id, 'application');
  if (body.env && (mode === 'process' || body.name === undefined)) {
    throw new ValidationError(
      'env applies to an application restore into a new container',
      'give mode "application" (or "auto") and a name',
    );
  }
  requireLazyFits(checkpoint, body);
  const job: RestoreJob = { ...request, manifest: await readManifest(dir) };
  let fallback: string | undefined;
  if (mode !== 'application' && hasImage) {
    try {
      const restored = await restoreProcessImage(ctx, job);
      if (checkpoint.application && restored.container)
        await notifyRestored(ctx, restored.container.id, checkpoint);
      return { ...restored, mode: 'process' as const };
    } catch (err) {
      if (
        mode === 'process' ||
        !checkpoint.application ||
        !(err instanceof AppError) ||
        !FALLBACK_CODES.has(err.code)
      )
        throw err;
      fallback = `${err.code}: ${err.message}`;
    }
  } else if (mode === 'auto') fallback = 'the checkpoint holds no CRIU image';
  const restored = await restoreApplication(ctx, job);
  return { ...restored, mode: 'application' as const, ...(fallback ? { fallback } : {}) };
}

async function restoreProcessImage(ctx: CheckpointContext, job: RestoreJob): Promise<RestoreResult> {
  const criuVersion = await ctx.support.require();
  requireHostFits(job.manifest.source, { ...ctx.host, criuVersion });
  if (job.body.name === undefined) return restoreInPlace(ctx, job);
  return restoreAsNew(ctx, job, job.body.name);
}

/** A checkpoint without its memory pages restores only lazily, from its page server, into a new container. */
function requireLazyFits(checkpoint: Checkpoint, body: RestoreBody): void {
  if (checkpoint.lazyPages && !body.lazyPages) throw new PagesNotInCheckpointError(checkpoint.id);
  if (!body.lazyPages) return;
  if (!checkpoint.lazyPages)
    throw new ValidationError(
      'lazyPages applies to a checkpoint without its memory pages',
      'this checkpoint holds them: restore it without lazyPages',
    );
  if (body.name === undefined || body.mode === 'application')
    throw new ValidationError('a lazy restore goes into a new container', 'give a name, and mode "process"');
}

/** A disk pre-copy's seed holds no process; its changes part restores in place or into its prepared container. */
function requirePreCopyFits(checkpoint: Checkpoint, body: RestoreBody): void {
  const part = checkpoint.diskPreCopy?.part;
  if (part === 'seed') throw new PreCopyPartError(checkpoint.id, 'seed');
  if (body.prepared === undefined) return;
  if (part !== 'changes')
    throw new ValidationError(
      'prepared applies to the changes checkpoint of a disk pre-copy',
      'restore this checkpoint without prepared',
    );
  if (body.name === undefined || body.mode === 'application')
    throw new ValidationError(
      'a restore into a prepared container needs its name, and mode "process"',
      'give the name the container was prepared with',
    );
}

/** Every level an incremental checkpoint builds on is there, before anything is stopped or created. */
async function requireChainIntact(
  ctx: CheckpointContext,
  checkpoint: Checkpoint,
  dir: string,
): Promise<void> {
  try {
    await requireChain(ctx).chain(path.join(dir, CHECKPOINT_IMAGES_DIR));
  } catch (err) {
    throw new ChainBrokenError(checkpoint.id, (err as Error).message);
  }
}
