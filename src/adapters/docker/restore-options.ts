import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { HostJournal } from '../../services/host-journal.js';
import type { DockerClient } from './docker-client.js';
import { criuConfigLines } from './runc-checkpointer.js';
import { SharedLock } from './shared-lock.js';

/**
 * CRIU options for `docker start --checkpoint`. runc reads one CRIU configuration file on every restore, and
 * dockerd offers no per-container annotation to name another (org.criu.config needs API 1.43); so the options
 * are written there for the length of one restore and the file is put back as it was. runc reads it on dumps
 * too, and refuses some options there, so dumps hold the lock shared and a restore with options exclusively.
 */
/** Puts a file back as it was (`null`: it did not exist); also after a crash. */
export async function putBackFile(file: string, before: string | null): Promise<void> {
  if (before === null) await rm(file, { force: true });
  else await writeFile(file, before);
}

export class RestoreOptionsFile {
  private readonly lock = new SharedLock();

  constructor(
    private readonly client: DockerClient,
    private readonly journal: HostJournal,
    private readonly file = '/etc/criu/runc.conf',
  ) {}

  /** Runs a dump while no restore has options in the file. */
  duringDump<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.shared(fn);
  }

  /** Runs a restore of `containerId` with its CRIU options in the file. */
  async duringRestore(
    containerId: string,
    criu: ContainerCriuOptions,
    fn: () => Promise<void>,
  ): Promise<void> {
    const lines = [
      ...criuConfigLines({ ...criu, ghostLimitBytes: undefined }),
      ...(await mountEngineLines(this.client, containerId)),
    ];
    if (lines.length === 0) return fn();
    return this.lock.exclusive(() => this.writing(lines, fn));
  }

  private async writing(lines: string[], fn: () => Promise<void>): Promise<void> {
    const before = await readFile(this.file, 'utf8').catch(() => undefined);
    const intent = this.journal.begin({
      kind: HostIntentKind.CRIU_CONFIG,
      file: this.file,
      before: before ?? null,
    });
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeFile(
      this.file,
      `${before ?? ''}${before && !before.endsWith('\n') ? '\n' : ''}${lines.join('\n')}\n`,
    );
    try {
      await fn();
    } finally {
      await putBackFile(this.file, before ?? null);
      this.journal.end(intent);
    }
  }
}

/**
 * CRIU's mount engine for a restore of this container. CRIU 4.2's mount-v2 cannot restore a single file
 * bind-mounted from the host (`-v ./app.conf:/etc/app.conf`, or docker-init with `--init`) here ("Can't remount
 * ... with MS_PRIVATE: No such file or directory"); its compat engine can.
 */
export async function mountEngineLines(client: DockerClient, containerId: string): Promise<string[]> {
  const raw = await client.call(() => client.container(containerId).inspect());
  if (raw.HostConfig.Init === true) return ['mntns-compat-mode'];
  for (const m of raw.Mounts ?? []) {
    if (m.Type !== 'bind' || !m.Source) continue;
    if ((await stat(m.Source).catch(() => undefined))?.isFile()) return ['mntns-compat-mode'];
  }
  return [];
}
