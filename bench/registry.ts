/**
 * A checkpoint's push to, and pull from, Debian's docker-registry on loopback, against skopeo moving the same
 * bytes in the same run: cryo's first push of a BENCH_REGISTRY_MIB (default 1024) memory workload's checkpoint
 * against `skopeo copy` of the same config and layer from an OCI layout to a fresh repository; and a pull into a
 * cryo with nothing local, against `skopeo copy` of the same artifact to an OCI layout on disk. The two paths run
 * in alternating order (ABBA: this VM writes fresh page-cache pages slowly), each to a registry of its own,
 * BENCH_RUNS (default 3) rounds, medians; a second push's bytes sent are printed too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { CryoProcess } from '../harness/cryo-process.js';
import { requirePrerequisites } from '../harness/prerequisites.js';
import { TestRegistry } from '../harness/registry.js';
import { fmt, ratio } from './format.js';
import { median, runMemoryContainer, timed } from './raw-criu.js';

const MIB = Number(process.env.BENCH_REGISTRY_MIB ?? 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

await requirePrerequisites();
const cryo = await CryoProcess.start();
const name = `cryo-bench-registry-${process.pid}`;
const work = await mkdtemp(path.join(os.tmpdir(), 'cryo-bench-registry-'));

/** An OCI layout of the pushed artifact's blobs, for skopeo to copy the same bytes. */
async function layoutOf(registry: TestRegistry, repository: string, tag: string): Promise<string> {
  const dir = path.join(work, `layout-${Date.now()}`);
  await execa('skopeo', [
    'copy',
    '--src-tls-verify=false',
    `docker://${registry.address}/${repository}:${tag}`,
    `oci:${dir}:${tag}`,
  ]);
  return dir;
}

try {
  await runMemoryContainer(name, MIB);
  const made = await cryo.api<{ id: string; sizeBytes: number }>(
    'POST',
    `/v1/containers/${name}/checkpoints`,
    {
      leaveRunning: true,
      name: 'bench',
    },
  );
  console.log(`checkpoint of a ${MIB} MiB workload: ${(made.sizeBytes / 2 ** 20).toFixed(0)} MiB`);
  // The layout skopeo copies: the artifact as cryo pushes it, read back once from a registry of its own.
  const seed = await TestRegistry.start();
  await cryo.api('POST', `/v1/checkpoints/${made.id}/push`, { reference: `${seed.address}/seed/bench:1` });
  const layout = await layoutOf(seed, 'seed/bench', '1');
  await seed.stop();

  const push: number[] = [];
  const skopeoPush: number[] = [];
  const pull: number[] = [];
  const skopeoPull: number[] = [];
  let secondPushBytes = 0;
  for (let round = 0; round < RUNS; round++) {
    for (const which of round % 2 === 0 ? ['cryo', 'skopeo'] : ['skopeo', 'cryo']) {
      const registry = await TestRegistry.start();
      try {
        if (which === 'cryo') {
          const reference = `${registry.address}/bench/cryo:1`;
          const [, ms] = await timed(() =>
            cryo.api('POST', `/v1/checkpoints/${made.id}/push`, { reference }),
          );
          push.push(ms);
          const again = await cryo.api<{ uploadedBytes: number }>('POST', `/v1/checkpoints/${made.id}/push`, {
            reference,
          });
          secondPushBytes = again.uploadedBytes;
          // A cryo with nothing local pulls it.
          const other = await CryoProcess.start();
          try {
            const [, pullMs] = await timed(() => other.api('POST', '/v1/checkpoints/pull', { reference }));
            pull.push(pullMs);
          } finally {
            await other.stop();
          }
        } else {
          const [, ms] = await timed(() =>
            execa('skopeo', [
              'copy',
              '--dest-tls-verify=false',
              `oci:${layout}:1`,
              `docker://${registry.address}/bench/skopeo:1`,
            ]),
          );
          skopeoPush.push(ms);
          const dest = path.join(work, `pulled-${round}`);
          const [, pullMs] = await timed(() =>
            execa('skopeo', [
              'copy',
              '--src-tls-verify=false',
              `docker://${registry.address}/bench/skopeo:1`,
              `oci:${dest}:1`,
            ]),
          );
          skopeoPull.push(pullMs);
          await rm(dest, { recursive: true, force: true });
        }
      } finally {
        await registry.stop();
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
  const m = (xs: number[]) => median(xs);
  console.log(
    `first push:  cryo ${fmt(m(push))}, skopeo copy of the same bytes from an OCI layout ${fmt(m(skopeoPush))}: ${ratio(m(push), m(skopeoPush))}`,
  );
  console.log(
    `pull:        cryo (into its catalog, every byte checked) ${fmt(m(pull))}, skopeo copy to an OCI layout ${fmt(m(skopeoPull))}: ${ratio(m(pull), m(skopeoPull))}`,
  );
  console.log(`second push of the same checkpoint: ${secondPushBytes} bytes sent`);
  console.log(
    `runs: push ${push.map(fmt).join(' ')} | skopeo ${skopeoPush.map(fmt).join(' ')} | pull ${pull.map(fmt).join(' ')} | skopeo pull ${skopeoPull.map(fmt).join(' ')}`,
  );
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  await cryo.stop();
  await rm(work, { recursive: true, force: true });
}
