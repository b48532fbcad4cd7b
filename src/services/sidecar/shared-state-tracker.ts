import { link, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { OPERATORS_SHARED_DIR } from '../../domain/layout.js';
import type { CheckpointMetadata } from '../../domain/sidecar/metadata.js';
import type { StateHandle } from '../../domain/sidecar/protocol.js';

/**
 * Where each shared state file of a job's completed checkpoints is, once published (hard links), so that a
 * later incremental checkpoint can link the unchanged ones instead of receiving them again.
 */
export class SharedStateTracker {
  private readonly places = new Map<string, Set<string>>();

  /** Records the shared files a completed checkpoint references; files no longer referenced are forgotten. */
  record(metadata: CheckpointMetadata, publishedOperatorsDir: string): void {
    const names = metadata.subtasks.flatMap((s) => s.handles.filter((h) => h.shared).map((h) => h.name));
    const referenced = new Set(names);
    for (const name of [...this.places.keys()]) if (!referenced.has(name)) this.places.delete(name);
    for (const name of names) {
      const places = this.places.get(name) ?? new Set<string>();
      places.add(path.join(publishedOperatorsDir, OPERATORS_SHARED_DIR, name));
      this.places.set(name, places);
    }
  }

  /**
   * Whether every shared file of the last completed checkpoint is still kept by some checkpoint: otherwise (one
   * was deleted) the job is asked for a full snapshot, since it may reference any of them.
   */
  async stillKept(): Promise<boolean> {
    if (this.places.size === 0) return false;
    for (const places of this.places.values()) {
      for (const p of [...places]) if (!(await exists(p))) places.delete(p);
      if (places.size === 0) {
        this.places.clear();
        return false;
      }
    }
    return true;
  }

  /** An unchanged block of an earlier checkpoint: the new checkpoint gets its own hard link to the same file. */
  async link(h: StateHandle, sharedDir: string): Promise<string | undefined> {
    const target = path.join(sharedDir, h.name);
    if (await exists(target)) return undefined;
    await mkdir(sharedDir, { recursive: true, mode: 0o700 });
    for (const source of this.places.get(h.name) ?? []) {
      const st = await stat(source).catch(() => undefined);
      if (!st || st.size !== h.size) continue;
      if (
        await link(source, target).then(
          () => true,
          () => false,
        )
      )
        return undefined;
    }
    return `shared state ${h.name} is no longer kept by any checkpoint`;
  }
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );
