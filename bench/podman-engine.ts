/**
 * cryo managing Podman's containers (CRYO_ENGINE=podman) against Podman's own commands, in the same run, on the
 * memory workload: checkpoint (stop) and restore in place, against `podman container checkpoint` and `restore`;
 * `cryo checkpoint --export` and `cryo restore --import`, against Podman's `checkpoint --export` and `restore --import`
 * (each a command as a user runs it). The two
 * paths alternate in order from run to run (this VM writes fresh page-cache pages slowly: whoever goes second
 * finds pages the first freed). Every restore is checked by the workload's memory checksum.
 * BENCH_MIB="512 2048" and BENCH_RUNS=3 set the sizes and the runs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Checkpoint } from '../src/domain/checkpoint.js';
import { freePort } from '../harness/containers.js';
import { TestCryo } from '../harness/cryo.js';
import { PODMAN, PodmanService, useImageInPodman, requirePodman } from '../harness/podman.js';
import { NODE_IMAGE, requirePrerequisites } from '../harness/prerequisites.js';
import { fmt, ratio } from './format.js';
import { fetchMemory, median, timed } from './raw-criu.js';

const SIZES = (process.env.BENCH_MIB ?? '512 2048').split(/\s+/).filter(Boolean).map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Times {
  checkpoint: number;
  restore: number;
  exportCheckpoint: number;
  importRestore: number;
}

/** The memory workload in a Podman container on a loopback port, filled and answering. */
async function runMemory(name: string, mib: number): Promise<{ port: number; initial: string }> {
  const port = await freePort();
  await execa(PODMAN, [
    'run',
    '-d',
    '--name',
    name,
    '-p',
    `127.0.0.1:${port}:8080`,
    '-e',
    `MEMORY_MIB=${mib}`,
    NODE_IMAGE,
    '/usr/bin/node',
    '/app/memory.js',
  ]);
  return { port, initial: (await fetchMemory(port, 600_000)).initial };
}

async function sameMemory(what: string, port: number, initial: string): Promise<void> {
  const after = await fetchMemory(port, 600_000);
  if (after.sha256 !== initial) throw new Error(`${what}: memory checksum ${after.sha256} != ${initial}`);
}

async function remove(...names: string[]): Promise<void> {
  for (const name of names) await execa(PODMAN, ['rm', '-f', '-t', '0', name], { reject: false });
}

async function podmanPath(mib: number, dir: string): Promise<Times> {
  const name = `cryo-bench-podman-${process.pid}`;
  try {
    const { port, initial } = await runMemory(name, mib);
    const [, checkpoint] = await timed(() => execa(PODMAN, ['container', 'checkpoint', name]));
    const [, restore] = await timed(() => execa(PODMAN, ['container', 'restore', name]));
    await sameMemory('podman restore', port, initial);
    const archive = path.join(dir, 'podman.tar');
    const [, exportCheckpoint] = await timed(() =>
      execa(PODMAN, ['container', 'checkpoint', '--compress', 'none', '--export', archive, name]),
    );
    await remove(name);
    const [, importRestore] = await timed(() => execa(PODMAN, ['container', 'restore', '--import', archive]));
    await sameMemory('podman restore --import', port, initial);
    await rm(archive, { force: true });
    return { checkpoint, restore, exportCheckpoint, importRestore };
  } finally {
    await remove(name);
  }
}

async function cryoPath(cryo: TestCryo, mib: number, dir: string): Promise<Times> {
  const name = `cryo-bench-cryo-${process.pid}`;
  const copy = `${name}-imported`;
  try {
    const { port, initial } = await runMemory(name, mib);
    const call = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
      const res = await cryo.api<T>(method, url, body);
      if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const [first, checkpoint] = await timed(() =>
      call<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {}),
    );
    const [, restore] = await timed(() => call('POST', `/v1/checkpoints/${first.id}/restore`, {}));
    await sameMemory('cryo restore', port, initial);
    await call('DELETE', `/v1/checkpoints/${first.id}`);
    // As a user runs both: one command each way (cryo checkpoint --export, cryo restore --import).
    const archive = path.join(dir, 'cryo.tar');
    const [exported, exportCheckpoint] = await timed(() =>
      cryo.cli(['checkpoint', name, '--export', archive]),
    );
    if (exported.exitCode !== 0) throw new Error(`cryo checkpoint --export: ${exported.stderr}`);
    const made = JSON.parse(exported.stdout) as Checkpoint;
    await call('DELETE', `/v1/checkpoints/${made.id}`);
    await remove(name);
    const [imported, importRestore] = await timed(() =>
      cryo.cli(['restore', '--import', archive, '--name', copy, '--ports', 'same']),
    );
    if (imported.exitCode !== 0) throw new Error(`cryo restore --import: ${imported.stderr}`);
    await sameMemory('cryo import + restore', port, initial);
    await rm(archive, { force: true });
    return { checkpoint, restore, exportCheckpoint, importRestore };
  } finally {
    await remove(name, copy);
  }
}

await requirePrerequisites();
await requirePodman();
const tmp = await mkdtemp(path.join('/var/lib', 'cryo-bench-podman-engine-'));
const releaseImage = await useImageInPodman(NODE_IMAGE, tmp);
const service = await PodmanService.start();
const cryo = await TestCryo.start({ engine: 'podman', podmanSocket: service.socket });
try {
  const { stdout: version } = await execa(PODMAN, ['version', '--format', '{{.Server.Version}}']);
  console.log(
    `kernel ${os.release()}, ${os.cpus().length} cores, podman ${version}, ${RUNS} runs per size (medians)`,
  );
  for (const mib of SIZES) {
    const podman: Times[] = [];
    const ours: Times[] = [];
    for (let i = 0; i < RUNS; i++) {
      if (i % 2 === 0) {
        podman.push(await podmanPath(mib, tmp));
        ours.push(await cryoPath(cryo, mib, tmp));
      } else {
        ours.push(await cryoPath(cryo, mib, tmp));
        podman.push(await podmanPath(mib, tmp));
      }
    }
    const m = (xs: Times[], k: keyof Times) => median(xs.map((x) => x[k]));
    console.log(`\n## ${mib} MiB`);
    console.log('| measure | podman | cryo (CRYO_ENGINE=podman) | ratio |');
    console.log('| --- | --- | --- | --- |');
    const rows: [string, keyof Times][] = [
      ['checkpoint (stop)', 'checkpoint'],
      ['restore in place', 'restore'],
      ['checkpoint + export to a file', 'exportCheckpoint'],
      ['import + restore', 'importRestore'],
    ];
    for (const [label, key] of rows)
      console.log(
        `| ${label} | ${fmt(m(podman, key))} | ${fmt(m(ours, key))} | ${ratio(m(ours, key), m(podman, key))} |`,
      );
  }
} finally {
  await cryo.stop();
  await service.stop();
  await releaseImage();
  await rm(tmp, { recursive: true, force: true });
}
