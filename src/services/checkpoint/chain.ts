import path from 'node:path';
import {
  ChainPolicySchema,
  heldBytes,
  type Checkpoint,
  type CreateCheckpointBody,
} from '../../domain/checkpoint.js';
import { ChainParentInvalidError, CheckpointNotFoundError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR } from '../../domain/layout.js';
import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { ImageStore } from '../ports/image-store.js';

/** Why a checkpoint cannot carry a chain level above it; undefined when it can. */
export function unfitParent(checkpoint: Checkpoint, containerId: string): string | undefined {
  if (checkpoint.kind !== 'container' || checkpoint.container?.id !== containerId)
    return 'it is not a checkpoint of this container';
  if (checkpoint.processImage === false) return 'it holds no process image';
  if (checkpoint.lazyPages) return 'its memory pages are not in it';
  if (checkpoint.diskPreCopy) return "it is part of a migration's disk pre-copy";
  if (checkpoint.migration) return "it is a migration's";
  return undefined;
}

/** The levels of the chain a checkpoint ends, its base first; one level for a full checkpoint. */
export function levelsOf(catalog: CheckpointCatalog, checkpoint: Checkpoint): Checkpoint[] {
  const levels = [checkpoint];
  let parent = checkpoint.chain?.parent;
  while (parent !== undefined) {
    const level = catalog.get(parent);
    // Records are read afresh each time: a loop shows as an id seen before.
    if (!level || levels.some((l) => l.id === level.id)) throw new CheckpointNotFoundError(parent);
    levels.unshift(level);
    parent = level.chain?.parent;
  }
  return levels;
}

/**
 * The checkpoint an incremental one builds on: the one named, or the container's latest that can carry it, unless
 * the policy calls for a full checkpoint (the chain holds `fullEvery` levels, or its increments hold
 * `maxChainRatio` times its base's bytes). Undefined: a full checkpoint.
 */
export function chooseParent(
  catalog: CheckpointCatalog,
  containerId: string,
  body: Pick<Partial<CreateCheckpointBody>, 'incremental' | 'parent'>,
): Checkpoint | undefined {
  if (body.parent !== undefined) {
    const named = catalog.get(body.parent);
    if (!named) throw new CheckpointNotFoundError(body.parent);
    const unfit = unfitParent(named, containerId);
    if (unfit) throw new ChainParentInvalidError(body.parent, unfit);
    return named;
  }
  if (!body.incremental) return undefined;
  const policy = body.incremental === true ? ChainPolicySchema.parse({}) : body.incremental;
  const latest = catalog
    .list({ container: containerId })
    .filter((c) => unfitParent(c, containerId) === undefined)
    .at(-1);
  if (!latest) return undefined;
  const levels = levelsOf(catalog, latest);
  if (levels.length >= policy.fullEvery) return undefined;
  const base = levels[0]!;
  const increments = levels.slice(1).reduce((n, l) => n + heldBytes(l), 0);
  if (increments >= policy.maxChainRatio * base.sizeBytes) return undefined;
  return latest;
}

/** The parent link of a level's images: relative, so that the store can move as a whole. */
export function parentLink(store: ImageStore, id: string, parentId: string): string {
  return path.relative(
    path.join(store.path(id), CHECKPOINT_IMAGES_DIR),
    path.join(store.path(parentId), CHECKPOINT_IMAGES_DIR),
  );
}
