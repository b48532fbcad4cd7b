import { keyGroupFor, type KeyGroupRange } from '../../domain/sidecar/key-groups.js';

/** One value per key. Values are replaced, never mutated in place: a snapshot holds the old one. */
export interface ValueState<V> {
  get(): V | undefined;
  set(value: V): void;
  clear(): void;
}

/** A map per key; copy-on-write against snapshots in progress. */
export interface MapState<V> {
  get(userKey: string): V | undefined;
  put(userKey: string, value: V): void;
  remove(userKey: string): void;
  entries(): IterableIterator<[string, V]>;
  size(): number;
}

interface MapCell {
  epoch: number;
  map: Map<string, unknown>;
}

const CHUNK_BYTES = 4 << 20;

/**
 * The keyed state of one subtask: named value and map states, each a map from key to value. A snapshot copies
 * the outer maps (synchronous, cheap) and serialises later; map cells written after a snapshot are copied first.
 */
export class KeyedStateBackend {
  private readonly values = new Map<string, Map<string, unknown>>();
  private readonly maps = new Map<string, Map<string, MapCell>>();
  private epoch = 0;
  currentKey = '';

  constructor(readonly maxParallelism: number) {}

  valueState<V>(name: string): ValueState<V> {
    const table = this.table(this.values, name);
    return {
      get: () => table.get(this.currentKey) as V | undefined,
      set: (value) => void table.set(this.currentKey, value),
      clear: () => void table.delete(this.currentKey),
    };
  }

  mapState<V>(name: string): MapState<V> {
    const table = this.table(this.maps, name);
    const cell = (write: boolean): MapCell | undefined => {
      let c = table.get(this.currentKey);
      if (!write) return c;
      if (!c) {
        c = { epoch: this.epoch, map: new Map() };
        table.set(this.currentKey, c);
      } else if (c.epoch < this.epoch) {
        c = { epoch: this.epoch, map: new Map(c.map) };
        table.set(this.currentKey, c);
      }
      return c;
    };
    return {
      get: (k) => cell(false)?.map.get(k) as V | undefined,
      put: (k, v) => void cell(true)!.map.set(k, v),
      remove: (k) => void cell(true)!.map.delete(k),
      entries: () => (cell(false)?.map ?? new Map<string, V>()).entries() as IterableIterator<[string, V]>,
      size: () => cell(false)?.map.size ?? 0,
    };
  }

  /** Takes the synchronous part of a snapshot; the returned function serialises it into chunks. */
  snapshot(): () => Buffer[] {
    this.epoch++;
    const values = [...this.values].map(([name, t]) => [name, new Map(t)] as const);
    const maps = [...this.maps].map(([name, t]) => [name, new Map(t)] as const);
    return () => {
      const chunks: Buffer[] = [];
      let pending: string[] = [];
      let pendingBytes = 0;
      const push = (line: string) => {
        pending.push(line);
        pendingBytes += line.length;
        if (pendingBytes >= CHUNK_BYTES) {
          chunks.push(Buffer.from(pending.join('')));
          pending = [];
          pendingBytes = 0;
        }
      };
      for (const [name, t] of values) for (const [k, v] of t) push(`${JSON.stringify(['v', name, k, v])}\n`);
      for (const [name, t] of maps)
        for (const [k, c] of t) push(`${JSON.stringify(['m', name, k, Object.fromEntries(c.map)])}\n`);
      if (pending.length > 0) chunks.push(Buffer.from(pending.join('')));
      return chunks;
    };
  }

  /** Loads the entries of a state file whose keys fall into `range`; the others belong to other subtasks. */
  restore(bytes: Buffer, range: KeyGroupRange): number {
    let loaded = 0;
    for (const line of bytes.toString('utf8').split('\n')) {
      if (line === '') continue;
      const [type, name, key, value] = JSON.parse(line) as ['v' | 'm', string, string, unknown];
      const group = keyGroupFor(key, this.maxParallelism);
      if (group < range.start || group > range.end) continue;
      if (type === 'v') this.table(this.values, name).set(key, value);
      else
        this.table(this.maps, name).set(key, {
          epoch: this.epoch,
          map: new Map(Object.entries(value as Record<string, unknown>)),
        });
      loaded++;
    }
    return loaded;
  }

  keys(): number {
    let n = 0;
    for (const t of this.values.values()) n += t.size;
    for (const t of this.maps.values()) n += t.size;
    return n;
  }

  private table<T>(tables: Map<string, Map<string, T>>, name: string): Map<string, T> {
    let t = tables.get(name);
    if (!t) {
      t = new Map();
      tables.set(name, t);
    }
    return t;
  }
}
