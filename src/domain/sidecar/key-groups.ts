/**
 * Keys map to key groups as in Flink: keyGroup = murmur(key) % maxParallelism, and subtask i of p owns the
 * contiguous range [ceil(i * maxP / p), ceil((i + 1) * maxP / p) - 1]. maxParallelism never changes for a job,
 * so state can be redistributed to any parallelism up to it.
 */

export interface KeyGroupRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** MurmurHash3 (x86, 32-bit, seed 0) of the key's UTF-8 bytes. */
export function murmur3(key: string): number {
  const data = Buffer.from(key, 'utf8');
  let h = 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const blocks = data.length >>> 2;
  for (let i = 0; i < blocks; i++) {
    let k = data.readUInt32LE(i * 4);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = data.length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= data[tail + 2]! << 16;
    if (rest >= 2) k ^= data[tail + 1]! << 8;
    k ^= data[tail]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function keyGroupFor(key: string, maxParallelism: number): number {
  return murmur3(key) % maxParallelism;
}

/** Flink's default: min(max(nextPow2(1.5 * parallelism), 128), 32768). */
export function defaultMaxParallelism(parallelism: number): number {
  const wanted = Math.ceil(parallelism * 1.5);
  let pow = 1;
  while (pow < wanted) pow *= 2;
  return Math.min(Math.max(pow, 128), 32768);
}

export function keyGroupRange(subtask: number, parallelism: number, maxParallelism: number): KeyGroupRange {
  if (!(parallelism >= 1 && parallelism <= maxParallelism) || subtask < 0 || subtask >= parallelism) {
    throw new RangeError(`no subtask ${subtask} of ${parallelism} with maxParallelism ${maxParallelism}`);
  }
  return {
    start: Math.floor((subtask * maxParallelism + parallelism - 1) / parallelism),
    end: Math.floor(((subtask + 1) * maxParallelism - 1) / parallelism),
  };
}

/** The subtask of `parallelism` that owns a key group. */
export function subtaskFor(keyGroup: number, parallelism: number, maxParallelism: number): number {
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

export function intersect(a: KeyGroupRange, b: KeyGroupRange): KeyGroupRange | undefined {
  const start = Math.max(a.start, b.start);
  const end = Math.min(a.end, b.end);
  return start <= end ? { start, end } : undefined;
}
