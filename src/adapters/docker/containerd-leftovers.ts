import { access, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { HostJournal } from '../../services/host-journal.js';

/** containerd's unpacked copies of restored checkpoints: <tmp>/ctrd-checkpoint<random>. */
export const CONTAINERD_LEFTOVER_PREFIX = 'ctrd-checkpoint';

/** What containerd leaves behind around `docker start --checkpoint`, and how cryo clears it. */
export class ContainerdLeftovers {
  constructor(
    private readonly execRoot: string,
    private readonly journal: HostJournal,
    private readonly options: { socket?: string | undefined; tmpDir?: string | undefined } = {},
  ) {}

  private get tmpDir(): string {
    return this.options.tmpDir ?? '/tmp';
  }

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
  async removeContentBlob(digest: string): Promise<boolean> {
    const socket = await this.socket();
    if (!socket) return false;
    const result = await execa('ctr', ['--address', socket, '--namespace', 'moby', 'content', 'rm', digest], {
      reject: false,
    });
    return result.exitCode === 0;
  }

  private tmpCopies(): Promise<Set<string>> {
    return tmpCopies(this.tmpDir);
  }

  private async socket(): Promise<string | undefined> {
    if (this.options.socket) return this.options.socket;
    // dockerd runs its own containerd under its exec root, unless a system containerd was there first.
    for (const candidate of [
      path.join(this.execRoot, 'containerd/containerd.sock'),
      '/run/containerd/containerd.sock',
    ]) {
      if (await exists(candidate)) return candidate;
    }
    return undefined;
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

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
