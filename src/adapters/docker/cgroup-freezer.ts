import { readFile, writeFile } from 'node:fs/promises';
import { NO_LOGGER, type Logger } from '../../services/ports/logger.js';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A container's cgroup freezer, read and thawed directly: a dump that fails half-way can leave the cgroup frozen
 * while Docker reports the container running and unpaused.
 */
export class CgroupFreezer {
  constructor(private readonly log: Logger = NO_LOGGER) {}

  async isFrozen(pid: number): Promise<boolean> {
    const file = await freezerFile(pid);
    if (!file) return false;
    const state = (await readFile(file.path, 'utf8').catch(() => '')).trim();
    return file.v2 ? state === '1' : state === 'FROZEN' || state === 'FREEZING';
  }

  /**
   * Freezes the cgroup and waits until all its tasks are frozen (nothing where there is no freezer); on any
   * failure it thaws again before it throws.
   */
  async freeze(pid: number, timeoutMs = 5_000): Promise<void> {
    const file = await freezerFile(pid);
    if (!file) return;
    const done = file.v2
      ? async () =>
          /^frozen 1$/m.test(await readFile(path.join(path.dirname(file.path), 'cgroup.events'), 'utf8'))
      : async () => (await readFile(file.path, 'utf8')).trim() === 'FROZEN';
    const deadline = Date.now() + timeoutMs;
    try {
      await writeFile(file.path, file.v2 ? '1' : 'FROZEN');
      while (!(await done())) {
        if (Date.now() > deadline)
          throw new Error(`the cgroup of pid ${pid} did not freeze within ${timeoutMs} ms`);
        await sleep(5);
      }
    } catch (err) {
      await this.thaw(pid);
      throw err;
    }
  }

  async thaw(pid: number): Promise<void> {
    const file = await freezerFile(pid);
    if (!file) return;
    await writeFile(file.path, file.v2 ? '0' : 'THAWED').catch((err: NodeJS.ErrnoException) => {
      // A cgroup gone with its container has nothing left to thaw; anything else may leave the workload frozen.
      if (err.code !== 'ENOENT' && err.code !== 'ENODEV')
        this.log.error({ pid, file: file.path, err: err.message }, 'could not thaw a cgroup');
    });
  }
}

async function freezerFile(pid: number): Promise<{ path: string; v2: boolean } | undefined> {
  if (pid <= 0) return undefined;
  const cgroups = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  for (const line of cgroups.split('\n')) {
    const [, controllers, cgPath] = line.split(':');
    if (controllers === undefined || cgPath === undefined) continue;
    if (controllers.split(',').includes('freezer')) {
      return { path: path.join('/sys/fs/cgroup/freezer', cgPath, 'freezer.state'), v2: false };
    }
    if (line.startsWith('0::') && cgroups.split('\n').filter(Boolean).length === 1) {
      return { path: path.join('/sys/fs/cgroup', cgPath, 'cgroup.freeze'), v2: true };
    }
  }
  return undefined;
}
