/** A container created from a disk pre-copy's seed and filled with its files, waiting for its changes' restore. */
export interface PreparedEntry {
  containerId: string;
  name: string;
  /** The seed checkpoint it was prepared from, and that checkpoint's name (the changes checkpoint names it). */
  seedId: string;
  seedName: string;
  /** The volumes that were new at its creation, which the changes' volume contents go into. */
  fresh: Set<string>;
  /** Its journal entry: a restart removes the container, as any restore target that never answered. */
  intent: number | undefined;
  expiresAt: number;
}

/** The prepared containers of this host, each removed (by `expire`) should its restore not come in time. */
export class PreparedContainers {
  private readonly entries = new Map<string, { entry: PreparedEntry; timer: NodeJS.Timeout }>();

  constructor(private readonly expire: (entry: PreparedEntry) => void) {}

  add(entry: PreparedEntry, now: number): void {
    const timer = setTimeout(() => {
      this.entries.delete(entry.containerId);
      this.expire(entry);
    }, entry.expiresAt - now);
    timer.unref();
    this.entries.set(entry.containerId, { entry, timer });
  }

  get(containerId: string): PreparedEntry | undefined {
    return this.entries.get(containerId)?.entry;
  }

  /** Hands the entry over (to its restore, or to its removal): it no longer expires. */
  take(containerId: string): PreparedEntry | undefined {
    const held = this.entries.get(containerId);
    if (!held) return undefined;
    clearTimeout(held.timer);
    this.entries.delete(containerId);
    return held.entry;
  }

  /** Takes every container prepared from this seed. */
  takeOfSeed(seedId: string): PreparedEntry[] {
    return [...this.entries.values()]
      .filter(({ entry }) => entry.seedId === seedId)
      .map(({ entry }) => this.take(entry.containerId)!);
  }
}
