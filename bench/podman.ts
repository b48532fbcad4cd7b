/**
 * Podman's own checkpoint/restore of the memory workload, for comparison: `podman container checkpoint --export`
 * (uncompressed) and `podman container restore --import`, timed end to end and checked by the memory checksum.
 * The node fixture image is copied from Docker (`docker save | podman load`) and removed afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { freePort } from '../harness/containers.js';
import { NODE_IMAGE } from '../harness/prerequisites.js';
import { fetchMemory, timed } from './raw-criu.js';

const PODMAN_IMAGE = `localhost/${NODE_IMAGE}`;

/** Podman's version, or undefined when it is not installed. */
export async function podmanAvailable(): Promise<string | undefined> {
  const result = await execa('podman', ['--version'], { reject: false });
  return result.exitCode === 0 ? result.stdout.trim() : undefined;
}

export async function podmanCheckpointRestore(mib: number): Promise<{ checkpoint: number; restore: number }> {
  await execa('sh', ['-c', `docker save ${NODE_IMAGE} | podman load`]);
  const name = `cryo-bench-podman-${process.pid}`;
  const dir = await mkdtemp(path.join('/var/lib', 'cryo-bench-podman-'));
  const archive = path.join(dir, 'checkpoint.tar');
  const port = await freePort();
  try {
    // Podman raises RLIMIT_NOFILE and RLIMIT_NPROC past what this sandbox allows; keep them below the host's.
    await execa('podman', [
      'run',
      '-d',
      '--name',
      name,
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=1024:1024',
      '-p',
      `127.0.0.1:${port}:8080`,
      '-e',
      `MEMORY_MIB=${mib}`,
      PODMAN_IMAGE,
      '/usr/bin/node',
      '/app/memory.js',
    ]);
    const before = await fetchMemory(port, 600_000);
    const [, checkpoint] = await timed(() =>
      execa('podman', ['container', 'checkpoint', '--compress', 'none', '--export', archive, name]),
    );
    await execa('podman', ['rm', '-f', name]);
    const [, restore] = await timed(() => execa('podman', ['container', 'restore', '--import', archive]));
    const after = await fetchMemory(port, 600_000);
    if (after.sha256 !== before.initial)
      throw new Error(`podman: memory checksum ${after.sha256} != ${before.initial}`);
    return { checkpoint, restore };
  } finally {
    await execa('podman', ['rm', '-f', name], { reject: false });
    await execa('podman', ['rmi', '-f', PODMAN_IMAGE], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
}
