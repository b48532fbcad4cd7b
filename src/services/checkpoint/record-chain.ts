import path from 'node:path';
import type { Checkpoint, CheckpointChain } from '../../domain/checkpoint.js';
import { CHECKPOINT_IMAGES_DIR, CRYO_MANIFEST, DUMP_LOG } from '../../domain/layout.js';
import type { ImageChain, PageCounts } from '../ports/image-chain.js';
import type { ImageStore } from '../ports/image-store.js';
import { parentLink } from './chain.js';

/** A staged checkpoint's place in a chain, once its images and files are there. */
export interface ChainLevel {
  chain: ImageChain;
  store: ImageStore;
  id: string;
  /** The checkpoint it builds on; none for the full checkpoint at a chain's base. */
  parent: Checkpoint | undefined;
}

/**
 * Leaves to the parent what it has: the pages equal to its pages at the same address (CRIU's parent link), and the
 * files equal to its files (hard links). Images from a full dump are compared with the parent's (`dedupe`);
 * images that are a level already (an imported registry layer) only get their link (`attach`). The level's own
 * bytes are counted once its metadata is written (`own`).
 */
export async function recordChain(
  level: ChainLevel,
  dir: string,
  images: 'dedupe' | 'attach' = 'dedupe',
): Promise<{ chain: Omit<CheckpointChain, 'ownBytes'>; own: () => Promise<number> }> {
  const { chain, store, id, parent } = level;
  if (!parent) return { chain: { depth: 0 }, own: () => chain.ownBytes(dir, undefined) };
  const parentDir = store.path(parent.id);
  const imagesDir = path.join(dir, CHECKPOINT_IMAGES_DIR);
  const link = parentLink(store, id, parent.id);
  let pages: PageCounts | undefined;
  if (images === 'dedupe')
    pages = await chain.dedupe(imagesDir, path.join(parentDir, CHECKPOINT_IMAGES_DIR), link);
  else await chain.attach(imagesDir, link);
  await chain.shareFiles(dir, parentDir, [CHECKPOINT_IMAGES_DIR, CRYO_MANIFEST, DUMP_LOG]);
  return {
    chain: { parent: parent.id, depth: (parent.chain?.depth ?? 0) + 1, ...(pages ? { pages } : {}) },
    own: () => chain.ownBytes(dir, parentDir),
  };
}
