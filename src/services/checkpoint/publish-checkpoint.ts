import type { Checkpoint } from '../../domain/checkpoint.js';
import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { ImageStore } from '../ports/image-store.js';

/**
 * The one way a checkpoint comes into being: its files are written into a staging directory by `fill`, then
 * made durable and visible (fsync, rename) and catalogued. Whatever fails on the way, nothing is left behind.
 */
export interface CheckpointWriter<T> {
  /** Writes the checkpoint's files into the staging directory `dir`. */
  fill: (dir: string) => Promise<T>;
  /** The catalog record of what `fill` wrote, once it is durable. */
  describe: (filled: T, sizeBytes: number) => Checkpoint;
  /** Work that `fill` started and that must end well before the checkpoint is catalogued; it runs during the fsync. */
  settle?: (filled: T) => Promise<void>;
}

export async function publishCheckpoint<T>(
  { store, catalog }: { store: ImageStore; catalog: CheckpointCatalog },
  id: string,
  { fill, describe, settle = async () => undefined }: CheckpointWriter<T>,
): Promise<Checkpoint> {
  const dir = await store.stage(id);
  let filled: T;
  let sizeBytes: number;
  try {
    filled = await fill(dir);
  } catch (err) {
    await store.discard(id);
    throw err;
  }
  try {
    const [committed, settled] = await Promise.allSettled([store.commit(id), settle(filled)]);
    if (committed.status === 'rejected') throw committed.reason;
    if (settled.status === 'rejected') throw settled.reason;
    ({ sizeBytes } = committed.value);
  } catch (err) {
    await store.discard(id);
    await store.remove(id);
    throw err;
  }
  const checkpoint = describe(filled, sizeBytes);
  try {
    catalog.add(checkpoint);
  } catch (err) {
    await store.remove(id);
    throw err;
  }
  return checkpoint;
}
