/**
 * A checkpoint's push to, and pull from, Debian's docker-registry on loopback, against skopeo moving the same
 * bytes in the same run: cryo's first push of a BENCH_REGISTRY_MIB (default 1024) memory workload's checkpoint
 * against `skopeo copy` of the same config and layer from an OCI layout to a fresh repository; and a pull into a
 * cryo with nothing local, against `skopeo copy` of the same artifact to an OCI layout on disk. The two paths run
 * in alternating order (ABBA: this VM writes fresh page-cache pages slowly), each to a registry of its own,
 * BENCH_RUNS (default 3) rounds, medians; a second push's bytes sent are printed too. In the same rounds: a push
 * and pull of the same workload's checkpoint encrypted (a cryo with CRYO_REGISTRY_ENCRYPTION_KEY, a 3072-bit RSA
 * key; the pull with the private key), and the restore on a cryo with nothing local (pull, then restore as a new
 * container) against skopeo's copy to disk plus cryo's restore of the local checkpoint.
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

  // The same workload's checkpoint by a cryo that encrypts every layer it pushes (ocicrypt, jwe).
  const priv = path.join(work, 'key.pem');
  const pub = path.join(work, 'key.pub.pem');
  await execa('openssl', ['genrsa', '-out', priv, '3072']);
  await execa('openssl', ['rsa', '-in', priv, '-pubout', '-out', pub]);
  const sealing = await CryoProcess.start({ CRYO_REGISTRY_ENCRYPTION_KEY: pub });
  const sealed = await sealing.api<{ id: string }>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    name: 'bench-sealed',
  });

  const push: number[] = [];
  const skopeoPush: number[] = [];
  const encPush: number[] = [];
  const pull: number[] = [];
  const skopeoPull: number[] = [];
  const encPull: number[] = [];
  const pulledRestore: number[] = [];
  const localRestore: number[] = [];
  let secondPushBytes = 0;
  /** A restore into a new container, timed, and the container removed. */
  const restoreMs = async (from: CryoProcess, id: string, tag: string) => {
    const container = `${name}-${tag}`;
    const [, ms] = await timed(() =>
      from.api('POST', `/v1/checkpoints/${id}/restore`, { name: container, ports: 'free' }),
    );
    await execa('docker', ['rm', '-f', container], { reject: false });
    return ms;
  };
  const paths = ['cryo', 'skopeo', 'encrypted'];
  for (let round = 0; round < RUNS; round++) {
    for (const which of round % 2 === 0 ? paths : [...paths].reverse()) {
      const registry = await TestRegistry.start();
      try {
        if (which === 'cryo' || which === 'encrypted') {
          const from = which === 'cryo' ? cryo : sealing;
          const id = which === 'cryo' ? made.id : sealed.id;
          const reference = `${registry.address}/bench/${which}:1`;
          const [, ms] = await timed(() => from.api('POST', `/v1/checkpoints/${id}/push`, { reference }));
          (which === 'cryo' ? push : encPush).push(ms);
          if (which === 'cryo') {
            const again = await cryo.api<{ uploadedBytes: number }>('POST', `/v1/checkpoints/${id}/push`, {
              reference,
            });
            secondPushBytes = again.uploadedBytes;
          }
          // A cryo with nothing local pulls it (with the private key, for the encrypted one), then restores it.
          const other = await CryoProcess.start(
            which === 'cryo' ? {} : { CRYO_REGISTRY_DECRYPTION_KEY: priv },
          );
          try {
            const [pulled, pullMs] = await timed(() =>
              other.api<{ id: string }>('POST', '/v1/checkpoints/pull', { reference }),
            );
            (which === 'cryo' ? pull : encPull).push(pullMs);
            if (which === 'cryo')
              pulledRestore.push(pullMs + (await restoreMs(other, pulled.id, `p${round}`)));
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
          localRestore.push(pullMs + (await restoreMs(cryo, made.id, `l${round}`)));
        }
      } finally {
        await registry.stop();
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
  await sealing.stop();
  const m = (xs: number[]) => median(xs);
  console.log(
    `first push:  cryo ${fmt(m(push))}, skopeo copy of the same bytes from an OCI layout ${fmt(m(skopeoPush))}: ${ratio(m(push), m(skopeoPush))}`,
  );
  console.log(
    `pull:        cryo (into its catalog, every byte checked) ${fmt(m(pull))}, skopeo copy to an OCI layout ${fmt(m(skopeoPull))}: ${ratio(m(pull), m(skopeoPull))}`,
  );
  console.log(
    `restore on a host with nothing local: cryo pull + restore ${fmt(m(pulledRestore))}, skopeo copy to disk + cryo's restore of a local checkpoint ${fmt(m(localRestore))}: ${ratio(m(pulledRestore), m(localRestore))}`,
  );
  console.log(
    `encryption: push ${fmt(m(encPush))} against ${fmt(m(push))} plain (${ratio(m(encPush), m(push))}), pull ${fmt(m(encPull))} against ${fmt(m(pull))} (${ratio(m(encPull), m(pull))})`,
  );
  console.log(`second push of the same checkpoint: ${secondPushBytes} bytes sent`);
  console.log(
    `runs: push ${push.map(fmt).join(' ')} | skopeo ${skopeoPush.map(fmt).join(' ')} | encrypted ${encPush.map(fmt).join(' ')} | pull ${pull.map(fmt).join(' ')} | skopeo pull ${skopeoPull.map(fmt).join(' ')} | encrypted pull ${encPull.map(fmt).join(' ')}`,
  );
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  await cryo.stop();
  await rm(work, { recursive: true, force: true });
}
