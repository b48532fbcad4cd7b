import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { HostJournal } from '../../services/ports/host-journal.js';
import type { ContainerdCtl } from './containerd-ctl.js';

/** containerd's unpacked copies of restored checkpoints: <tmp>/ctrd-checkpoint<random>. */
export const CONTAINERD_LEFTOVER_PREFIX = 'ctrd-checkpoint';

/** What containerd leaves behind around `docker start --checkpoint`, and how cryo clears it. */
export class ContainerdLeftovers {
  constructor(
    private readonly containerd: ContainerdCtl,
    private readonly journal: HostJournal,
    private readonly tmpDir = '/tmp',
  ) {}

  /**
   * Runs `fn` and removes the unpacked copies of checkpoints that containerd 1.6 leaves in /tmp
   * (containerd/containerd#8009) and that appeared meanwhile; callers serialise restores so that they are its own.
   */
  async clearingTmpCopies<T>(fn: () => Promise<T>): Promise<T> {
    const before = await this.tmpCopies();
    const intent = this.journal.begin({
      kind: HostIntentKind.CONTAINERD_TMP,
      tmpDir: this.tmpDir,
      before: [...before],
    });
    try {
      return await fn();
    } finally {
      await removeTmpCopiesSince(this.tmpDir, before);
      this.journal.end(intent);
    }
  }

  /**
   * containerd (namespace moby) may still hold the same checkpoint blob from an earlier restore or checkpoint,
   * and then refuses to commit it again ("content ... already exists"); this drops the stale blob.
   */
  removeContentBlob(digest: string): Promise<boolean> {
    return this.containerd.removeContent(digest);
  }

  private tmpCopies(): Promise<Set<string>> {
    return tmpCopies(this.tmpDir);
  }
}

async function tmpCopies(tmpDir: string): Promise<Set<string>> {
  const entries = await readdir(tmpDir).catch(() => [] as string[]);
  return new Set(entries.filter((e) => e.startsWith(CONTAINERD_LEFTOVER_PREFIX)));
}

/** Removes containerd's copies in `tmpDir` that were not there `before`; also after a crash. */
export async function removeTmpCopiesSince(tmpDir: string, before: Iterable<string>): Promise<void> {
  const kept = new Set(before);
  const now = await tmpCopies(tmpDir);
  await Promise.all(
    [...now]
      .filter((d) => !kept.has(d))
      .map((d) => rm(path.join(tmpDir, d), { recursive: true, force: true })),
  );
}
