import { access, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint } from '../../domain/checkpoint.js';
import { CheckpointInUseError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR, CRYO_MANIFEST } from '../../domain/layout.js';
import { ManifestSchema } from '../../domain/manifest.js';
import { replaceFile } from '../support/replace-file.js';
import { parentLink } from './chain.js';
import { requireChain, type CheckpointContext } from './context.js';
import { readManifest } from './manifest.js';

/** A child's images being rebased, beside its images; and its images before the swap. */
const REBASED = `${CHECKPOINT_IMAGES_DIR}.rebased`;
const REPLACED = `${CHECKPOINT_IMAGES_DIR}.replaced`;

/**
 * Removes a checkpoint. Incremental checkpoints that build on it are rebased first onto its own parent (its pages
 * that they use are copied into them; the files they share with it are hard links and stay), so none breaks.
 */
export async function removeCheckpoint(ctx: CheckpointContext, removed: Checkpoint): Promise<void> {
  const children = ctx.catalog.list().filter((c) => c.chain?.parent === removed.id);
  const busy = children.find((c) => ctx.leases.isLeased(c.id));
  if (busy) throw new CheckpointInUseError(busy.id);
  const releases = children.map((c) => ctx.leases.take(c.id));
  try {
    for (const child of children) await rebaseChild(ctx, child, removed);
  } finally {
    for (const release of releases) release();
  }
  ctx.catalog.remove(removed.id);
  await ctx.store.remove(removed.id);
}

async function rebaseChild(ctx: CheckpointContext, child: Checkpoint, removed: Checkpoint): Promise<void> {
  const { store, catalog } = ctx;
  const chain = requireChain(ctx);
  const dir = store.path(child.id);
  const images = path.join(dir, CHECKPOINT_IMAGES_DIR);
  const rebased = path.join(dir, REBASED);
  await rm(rebased, { recursive: true, force: true });
  const grandparent = removed.chain?.parent === undefined ? undefined : catalog.get(removed.chain.parent);
  const pages = await chain.rebase(
    images,
    rebased,
    grandparent ? parentLink(store, child.id, grandparent.id) : undefined,
  );
  await writeParent(dir, grandparent);
  await swapImages(dir);
  const parentDir = grandparent ? store.path(grandparent.id) : undefined;
  const record = { ...child };
  delete record.layer;
  catalog.update({
    ...record,
    chain: {
      ...(grandparent ? { parent: grandparent.id } : {}),
      depth: grandparent ? (grandparent.chain?.depth ?? 0) + 1 : 0,
      pages,
      ownBytes: await chain.ownBytes(dir, parentDir),
    },
    sizeBytes: await chain.ownBytes(dir, undefined),
  });
  catalog.saveSeal(child.id, undefined);
  for (const below of descendantsOf(ctx, child.id)) {
    if (below.chain) catalog.update({ ...below, chain: { ...below.chain, depth: below.chain.depth - 1 } });
  }
}

/** cryo.json names the parent; its entries' hashes go (its images changed): the next export hashes them again. */
async function writeParent(dir: string, parent: Checkpoint | undefined): Promise<void> {
  const manifest = await readManifest(dir);
  const rest = { ...manifest.checkpoint };
  delete rest.parent;
  const checkpoint = parent
    ? { ...rest, parent: { id: parent.id, name: parent.name, createdAt: parent.createdAt } }
    : rest;
  await replaceFile(
    path.join(dir, CRYO_MANIFEST),
    JSON.stringify(ManifestSchema.parse({ ...manifest, checkpoint, entries: [] }), null, 2),
  );
}

/**
 * Makes a level's record and cryo.json name the parent its images link to. True when either had to change.
 */
export async function reconcileLevel(ctx: CheckpointContext, level: Checkpoint): Promise<boolean> {
  const chain = requireChain(ctx);
  const dir = ctx.store.path(level.id);
  const dirs = await chain.chain(path.join(dir, CHECKPOINT_IMAGES_DIR)).catch(() => undefined);
  if (!dirs) return false;
  const linked = dirs[1] === undefined ? undefined : path.basename(path.dirname(dirs[1]));
  const parent = linked === undefined ? undefined : ctx.catalog.get(linked);
  if (linked !== undefined && !parent) return false;
  let changed = false;
  if (level.chain?.parent !== linked) {
    ctx.catalog.update({
      ...level,
      chain: {
        ...(parent ? { parent: parent.id } : {}),
        depth: parent ? (parent.chain?.depth ?? 0) + 1 : 0,
        ownBytes: await chain.ownBytes(dir, parent ? ctx.store.path(parent.id) : undefined),
      },
    });
    changed = true;
  }
  const manifest = await readManifest(dir);
  if (manifest.checkpoint.parent?.id !== linked) {
    await writeParent(dir, parent);
    changed = true;
  }
  return changed;
}

/** Every checkpoint that builds on `id`, directly or not. */
function descendantsOf(ctx: CheckpointContext, id: string): Checkpoint[] {
  const all = ctx.catalog.list();
  const out: Checkpoint[] = [];
  const walk = (parent: string): void => {
    for (const c of all.filter((x) => x.chain?.parent === parent)) {
      out.push(c);
      walk(c.id);
    }
  };
  walk(id);
  return out;
}

/** The rebased images take the place of the old ones; `recoverRebase` finishes a swap a crash cut short. */
async function swapImages(dir: string): Promise<void> {
  await rename(path.join(dir, CHECKPOINT_IMAGES_DIR), path.join(dir, REPLACED));
  await rename(path.join(dir, REBASED), path.join(dir, CHECKPOINT_IMAGES_DIR));
  await rm(path.join(dir, REPLACED), { recursive: true, force: true });
}

/**
 * After a crash during a rebase: a swap half done is finished (the rebased images are complete once the old ones
 * were moved aside), a rebase not yet swapped is dropped (the old images, and the parent they need, are there).
 */
export async function recoverRebase(dir: string): Promise<'none' | 'finished' | 'dropped'> {
  const exists = (p: string) =>
    access(path.join(dir, p)).then(
      () => true,
      () => false,
    );
  if (!(await exists(CHECKPOINT_IMAGES_DIR)) && (await exists(REBASED))) {
    await rename(path.join(dir, REBASED), path.join(dir, CHECKPOINT_IMAGES_DIR));
    await rm(path.join(dir, REPLACED), { recursive: true, force: true });
    return 'finished';
  }
  const leftovers = (await exists(REBASED)) || (await exists(REPLACED));
  await rm(path.join(dir, REBASED), { recursive: true, force: true });
  await rm(path.join(dir, REPLACED), { recursive: true, force: true });
  return leftovers ? 'dropped' : 'none';
}
