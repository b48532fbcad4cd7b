import { readFile } from 'node:fs/promises';
import { imageEntries, protobufFields } from './image-file.js';

/** pstree.img: one pstree_entry { pid = 1; ppid = 2; pgid = 3; sid = 4; repeated threads = 5 } per task. */
export const PSTREE_IMAGE = 'pstree.img';

/**
 * Every pid number a dumped tree's tasks and threads hold, as the restore needs them free. (Its process groups and
 * sessions are its own tasks' pids, or, for a shell job, outside it and left alone.)
 */
export function pstreePids(image: Buffer): number[] {
  const pids = new Set<number>();
  for (const entry of imageEntries(image)) {
    for (const [field, value] of protobufFields(entry)) {
      if ((field === 1 || field === 5) && typeof value === 'bigint') pids.add(Number(value));
    }
  }
  return [...pids];
}

export async function readPstreePids(file: string): Promise<number[]> {
  return pstreePids(await readFile(file));
}
