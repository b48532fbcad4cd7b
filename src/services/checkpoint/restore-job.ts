import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint, RestoreBody } from '../../domain/checkpoint.js';
import {
  ContainerNameInUseError,
  ContainerNotFoundError,
  ImageNotFoundError,
} from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import { LABEL_RESTORED_FROM, LABEL_SOURCE_CONTAINER } from '../../domain/labels.js';
import { DOCKER_CONFIG } from '../../domain/layout.js';
import type { Manifest } from '../../domain/manifest.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import type { CheckpointContext } from './context.js';

/** One restore of a container checkpoint, as every way of restoring it needs it. */
export interface RestoreJob {
  checkpoint: Checkpoint;
  manifest: Manifest;
  dir: string;
  body: RestoreBody;
  started: number;
  /** Set only with body.abandonOnDisconnect: aborts when the caller has gone. */
  abandoned: AbortSignal | undefined;
}

/** The container a checkpoint was taken of, for a restore in place. */
export async function originalContainer(
  ctx: CheckpointContext,
  checkpoint: Checkpoint,
): Promise<ContainerInfo> {
  const original = checkpoint.container;
  const container = original ? await ctx.runtime.inspect(original.id) : undefined;
  if (!container) {
    throw new ContainerNotFoundError(
      original?.name ?? checkpoint.name,
      'the container this checkpoint was taken of is gone; restore into a new one with {"name": "..."}',
    );
  }
  return container;
}

/**
 * A new, never started container named `name` from the checkpoint's Docker config (with `env` set over it);
 * `replacing` keeps the original's host ports and volumes, for a container that takes its place. Its journal entry
 * (`intent`) removes it at the next start unless the caller ends it.
 */
export async function createRestoreTarget(
  ctx: CheckpointContext,
  job: RestoreJob,
  name: string,
  { env, replacing = false }: { env?: string[] | undefined; replacing?: boolean } = {},
): Promise<{ container: { id: string; name: string }; intent: number | undefined }> {
  const { checkpoint, manifest, dir } = job;
  const { runtime } = ctx;
  if (await runtime.inspect(name)) throw new ContainerNameInUseError(name);
  const config = withEnv(JSON.parse(await readFile(path.join(dir, DOCKER_CONFIG), 'utf8')) as unknown, env);
  const imageId = await runtime.resolveImage(manifest.image);
  if (!imageId) throw new ImageNotFoundError(manifest.image.ref, manifest.image.id);
  // Docker finishes a create that cryo dies during: until its id is known, the journal knows it by name and label.
  const creating = ctx.journal?.begin({
    kind: HostIntentKind.RESTORE_TARGET_CREATING,
    name,
    restoredFrom: checkpoint.id,
  });
  try {
    const created = await runtime.createFromConfig(config, {
      name,
      labels: {
        [LABEL_RESTORED_FROM]: checkpoint.id,
        [LABEL_SOURCE_CONTAINER]: checkpoint.container?.id ?? '',
      },
      ports: replacing ? 'same' : job.body.ports,
      imageId,
      keepVolumes: replacing,
    });
    // Should cryo die before the restore answers, its next start removes the container.
    const intent = ctx.journal?.begin({ kind: HostIntentKind.RESTORE_TARGET, containerId: created.id });
    return { container: created, intent };
  } finally {
    if (creating !== undefined) ctx.journal?.end(creating);
  }
}

/** Docker's config with `env` (NAME=value) set over its environment. */
function withEnv(config: unknown, env: string[] | undefined): unknown {
  if (!env || env.length === 0) return config;
  const c = config as { Config?: { Env?: string[] } };
  const names = new Set(env.map((e) => e.slice(0, e.indexOf('='))));
  const kept = (c.Config?.Env ?? []).filter((e) => !names.has(e.slice(0, e.indexOf('='))));
  return { ...c, Config: { ...c.Config, Env: [...kept, ...env] } };
}

/** The volumes that exist now and did not in `before`: those a create made, which the checkpoint's contents fill. */
export async function newVolumes(ctx: CheckpointContext, before: Set<string>): Promise<Set<string>> {
  return new Set([...(await ctx.runtime.volumeNames())].filter((v) => !before.has(v)));
}

/** Applies the job's root-filesystem changes, and its volumes' contents to `fresh` ones, to a created container. */
export async function fillNewContainer(
  ctx: CheckpointContext,
  { manifest, dir }: Pick<RestoreJob, 'manifest' | 'dir'>,
  containerId: string,
  fresh: Set<string>,
): Promise<void> {
  const { changed, deleted, removed = 0 } = manifest.rootfs;
  // Nothing to apply saves two calls to Docker while the workload is down (a migration's restore).
  if (changed > 0 || deleted > 0 || removed > 0) await ctx.rootfs.apply(containerId, dir);
  await ctx.rootfs.applyVolumes(containerId, dir, manifest.mounts, fresh);
}
