import { readFile } from 'node:fs/promises';
import type { CriuStats } from '../../domain/criu-stats.js';

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
  if (image.length < 12) return {};
  const size = image.readUInt32LE(8);
  const payload = image.subarray(12, 12 + size);
  const out: CriuStats = {};
  for (const [field, value] of fields(payload)) {
    if (!Buffer.isBuffer(value)) continue;
    const map = field === 1 ? DUMP_FIELDS : field === 2 ? RESTORE_FIELDS : undefined;
    if (!map) continue;
    for (const [sub, n] of fields(value)) {
      const key = map[sub];
      if (key && typeof n === 'bigint') out[key] = TIMES.has(key) ? Number(n) / 1000 : Number(n);
    }
  }
  return out;
}

/** The fields of a protobuf message: varints as bigint, length-delimited as Buffer; others are skipped. */
function* fields(buf: Buffer): Generator<[number, bigint | Buffer]> {
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const byte = buf[i++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) yield [field, varint()];
    else if (wire === 2) {
      const len = Number(varint());
      yield [field, buf.subarray(i, i + len)];
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return;
  }
}

/** CRIU's stats from an image file; a missing or unreadable one only means no stats, never a failed operation. */
export async function readStatsImage(file: string): Promise<CriuStats> {
  try {
    return parseStatsImage(await readFile(file));
  } catch {
    return {};
  }
}
