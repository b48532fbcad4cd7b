import { readdir, readFile } from 'node:fs/promises';
import { sleep } from './runc-dump.js';

/**
 * Waits until no `runc checkpoint` of the container is left running: a SIGKILL of cryo does not end the runc it
 * started, and that dump may still stop or thaw the container after recovery has looked at it.
 */
export async function waitForOrphanDumps(containerId: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await dumpRunning(containerId)) {
    if (Date.now() > deadline)
      throw new Error(
        `a runc checkpoint of ${containerId} is still running ${timeoutMs} ms after cryo restarted`,
      );
    await sleep(100);
  }
}

async function dumpRunning(containerId: string): Promise<boolean> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv.at(-1) === '') argv.pop();
    if (argv.includes('checkpoint') && argv.at(-1) === containerId) return true;
  }
  return false;
}
