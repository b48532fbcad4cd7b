import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import type { PostCopySupport } from '../../domain/migration.js';

/**
 * CRIU sizes the pipes it serves lazy pages through to 819 pages (PIPE_MAX_SIZE in criu/include/page-pipe.h);
 * a process without CAP_SYS_RESOURCE cannot grow a pipe past fs.pipe-max-size (1 MiB by default), and the lazy
 * dump then fails with "page-pipe: tee: 65536".
 */
const CRIU_PAGE_PIPE_BYTES = 819 * 4096;
const CAP_SYS_RESOURCE = 24n;

/** Whether this host can take part in a post-copy migration: CRIU's lazy pages, on both of its ends. */
export async function postCopySupport(binary: string, disabled: boolean): Promise<PostCopySupport> {
  if (disabled) return { ok: false, reason: 'post-copy is turned off here (CRYO_POST_COPY=off)' };
  const uffd = await execa(binary, ['check', '--feature', 'uffd-noncoop'], {
    reject: false,
    timeout: 30_000,
  });
  if (uffd.exitCode !== 0)
    return {
      ok: false,
      reason: 'CRIU finds no non-cooperative userfaultfd here (criu check --feature uffd-noncoop)',
    };
  const status = await readFile('/proc/self/status', 'utf8');
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
  if ((capEff >> CAP_SYS_RESOURCE) & 1n) return { ok: true };
  const pipeMax = Number((await readFile('/proc/sys/fs/pipe-max-size', 'utf8')).trim());
  if (pipeMax >= CRIU_PAGE_PIPE_BYTES) return { ok: true };
  return {
    ok: false,
    reason: `fs.pipe-max-size is ${pipeMax}, under the ${CRIU_PAGE_PIPE_BYTES} bytes of CRIU's page pipes, and cryo lacks CAP_SYS_RESOURCE (sysctl fs.pipe-max-size=4194304, as native-scripts/setup-host.sh sets)`,
  };
}
