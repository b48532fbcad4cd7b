/**
 * cryo's two restore paths on the engine of this run, measured in the same run:
 * - `docker start --checkpoint` (a container under runc, restored in place: cryo links its images into Docker's
 *   checkpoint directory, and containerd copies them), and raw `docker checkpoint create` / `start --checkpoint`;
 * - cryo's OCI runtime (a container under `--runtime cryo`, restored in place: dockerd's create becomes
 *   `runc restore --detach` from cryo's own images).
 * Every restore is checked: the workload must report the memory checksum it had before the checkpoint.
 * Then what cryo's runtime adds to every runc call: `docker exec` and `docker stop` + `docker start` on a
 * container under runc and one under cryo's runtime.
 *
 * BENCH_SIZES (MiB, default "512"), BENCH_RUNS (default 3; medians), BENCH_CALLS (default 20).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { readJson } from '../harness/containers.js';
import { callApi } from '../harness/cryo-process.js';
import { engineEnv, engineName } from '../harness/engine.js';
import { BUSYBOX_IMAGE, requirePrerequisites } from '../harness/prerequisites.js';
import { dockerCheckpointRestore } from './docker-checkpoint.js';
import { median, runMemoryContainer, timed, type Memory } from './raw-criu.js';
import { fmt, fmtMs, ratio } from './format.js';

const SIZES = (process.env.BENCH_SIZES ?? '512').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CALLS = Number(process.env.BENCH_CALLS ?? 20);

function check(label: string, got: Memory, want: string): void {
  if (got.sha256 !== want) throw new Error(`${label}: memory checksum ${got.sha256} != ${want}`);
}

/** A stop-mode checkpoint through cryo and an in-place restore of it; the restore's time. */
async function cryoRestore(mib: number, runtime: 'runc' | 'cryo'): Promise<number> {
  const dataDir = await mkdtemp(path.join('/var/lib', 'cryo-bench-'));
  const server = await startServer(
    loadConfig(engineEnv(), { listen: '127.0.0.1:0', dataDir, logLevel: 'warn' }),
  );
  const name = `cryo-bench-${runtime}-${process.pid}`;
  try {
    const before = await runMemoryContainer(name, mib, runtime);
    const cp = await callApi(server, 'POST', `/v1/containers/${name}/checkpoints`, {});
    const [, ms] = await timed(() => callApi(server, 'POST', `/v1/checkpoints/${String(cp.id)}/restore`));
    check(`restore under ${runtime}`, await readJson<Memory>(name, 60_000, 8080, 120_000), before.initial);
    return ms;
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Medians of `docker exec true` and of `docker stop` + `docker start`, on a container under `runtime`. */
async function runtimeCalls(runtime: 'runc' | 'cryo'): Promise<{ exec: number; stopStart: number }> {
  const name = `cryo-bench-calls-${runtime}-${process.pid}`;
  try {
    await execa('docker', [
      'run',
      '-d',
      '--name',
      name,
      '--runtime',
      runtime,
      BUSYBOX_IMAGE,
      'sleep',
      '100000',
    ]);
    const exec: number[] = [];
    const stopStart: number[] = [];
    for (let i = 0; i < CALLS; i++)
      exec.push((await timed(() => execa('docker', ['exec', name, 'true'])))[1]);
    for (let i = 0; i < Math.max(3, CALLS / 4); i++) {
      stopStart.push(
        (
          await timed(async () => {
            await execa('docker', ['stop', '-t', '0', name]);
            await execa('docker', ['start', name]);
          })
        )[1],
      );
    }
    return { exec: median(exec), stopStart: median(stopStart) };
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
  }
}

await requirePrerequisites();
const { stdout: version } = await execa('docker', ['version', '--format', '{{.Server.Version}}']);
console.log(
  `engine ${engineName} (Docker ${version.trim()}), kernel ${os.release()}, ${os.cpus().length} cores, ${RUNS} runs per size (medians)`,
);
const checkpointStartWorks = Number.parseInt(version, 10) < 28;
for (const mib of SIZES) {
  const legacy: number[] = [];
  const viaRuntime: number[] = [];
  const docker: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (checkpointStartWorks) {
      legacy.push(await cryoRestore(mib, 'runc'));
      docker.push((await dockerCheckpointRestore(mib)).restore);
    }
    viaRuntime.push(await cryoRestore(mib, 'cryo'));
  }
  console.log(`\n## restore in place, ${mib} MiB`);
  console.log('| path | restore | against docker start --checkpoint |');
  console.log('| --- | --- | --- |');
  if (checkpointStartWorks) {
    const d = median(docker);
    console.log(`| raw docker start --checkpoint | ${fmt(d)} | 1.00x |`);
    console.log(
      `| cryo through docker start --checkpoint | ${fmt(median(legacy))} | ${ratio(median(legacy), d)} |`,
    );
    console.log(
      `| cryo through its runtime | ${fmt(median(viaRuntime))} | ${ratio(median(viaRuntime), d)} |`,
    );
  } else {
    console.log(`| raw docker start --checkpoint | fails (moby/moby#50750) | |`);
    console.log(`| cryo through its runtime | ${fmt(median(viaRuntime))} | |`);
  }
}
const plain = await runtimeCalls('runc');
const wrapped = await runtimeCalls('cryo');
console.log(`\n## what cryo's runtime adds to every runc call (${CALLS} calls, medians)`);
console.log('| call | under runc | under cryo | ratio |');
console.log('| --- | --- | --- | --- |');
console.log(
  `| docker exec true | ${fmtMs(plain.exec)} | ${fmtMs(wrapped.exec)} | ${ratio(wrapped.exec, plain.exec)} |`,
);
console.log(
  `| docker stop -t 0 + docker start | ${fmtMs(plain.stopStart)} | ${fmtMs(wrapped.stopStart)} | ${ratio(wrapped.stopStart, plain.stopStart)} |`,
);
