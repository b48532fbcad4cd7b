import { execa } from 'execa';
import { readJson } from '../harness/containers.js';
import { runMemoryContainer, timed, type Memory } from './raw-criu.js';

/**
 * Docker's own checkpoint path, as a user runs it: `docker checkpoint create`, then `docker start --checkpoint`
 * of the memory workload (under runc), checked to answer with the memory it had.
 */
export async function dockerCheckpointRestore(mib: number): Promise<{ checkpoint: number; restore: number }> {
  const name = `cryo-bench-docker-${process.pid}`;
  try {
    const before = await runMemoryContainer(name, mib, 'runc');
    const [, checkpoint] = await timed(() => execa('docker', ['checkpoint', 'create', name, 'bench']));
    const [, restore] = await timed(() => execa('docker', ['start', '--checkpoint', 'bench', name]));
    const after = await readJson<Memory>(name, 60_000, 8080, 120_000);
    if (after.sha256 !== before.initial)
      throw new Error(`docker: memory checksum ${after.sha256} != ${before.initial}`);
    return { checkpoint, restore };
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
    // containerd 1.6 leaves every restore's unpacked copy in /tmp (containerd/containerd#8009).
    await execa('sh', ['-c', 'rm -rf /tmp/ctrd-checkpoint*'], { reject: false });
  }
}
