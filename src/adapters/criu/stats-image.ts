import { readFile } from 'node:fs/promises';
import type { CriuStats } from '../../domain/criu-stats.js';
import { imageEntries, protobufFields } from './image-file.js';

/**
 * CRIU's stats-dump and stats-restore images: a magic (u32), a second magic (u32), the payload size (u32), then a
 * protobuf stats_entry { dump = 1; restore = 2 }. Times are in microseconds.
 */

const DUMP_FIELDS: Record<number, keyof CriuStats> = {
  1: 'freezingMs',
  2: 'frozenMs',
  3: 'memdumpMs',
  4: 'memwriteMs',
  5: 'pagesScanned',
  7: 'pagesWritten',
};
const RESTORE_FIELDS: Record<number, keyof CriuStats> = {
  3: 'forkingMs',
  4: 'restoreMs',
  5: 'pagesRestored',
};
const TIMES = new Set<keyof CriuStats>([
  'freezingMs',
  'frozenMs',
  'memdumpMs',
  'memwriteMs',
  'forkingMs',
  'restoreMs',
]);

export function parseStatsImage(image: Buffer): CriuStats {
  const payload = imageEntries(image).next().value;
  if (!payload) return {};
  const out: CriuStats = {};
  for (const [field, value] of protobufFields(payload)) {
    if (!Buffer.isBuffer(value)) continue;
    const map = field === 1 ? DUMP_FIELDS : field === 2 ? RESTORE_FIELDS : undefined;
    if (!map) continue;
    for (const [sub, n] of protobufFields(value)) {
      const key = map[sub];
      if (key && typeof n === 'bigint') out[key] = TIMES.has(key) ? Number(n) / 1000 : Number(n);
    }
  }
  return out;
}

/** CRIU's stats from an image file; a missing or unreadable one only means no stats, never a failed operation. */
export async function readStatsImage(file: string): Promise<CriuStats> {
  try {
    return parseStatsImage(await readFile(file));
  } catch {
    return {};
  }
}
