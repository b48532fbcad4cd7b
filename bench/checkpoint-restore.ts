/**
 * Checkpoint and restore of the memory workload, in one run, through:
 * - raw `criu dump` / `criu restore` of the workload run as a plain process;
 * - raw `runc checkpoint` of the same workload in a Docker container, bypassing dockerd (stop and leave-running),
 *   with CRIU's own frozen time, and the fsync of its images that a durable checkpoint adds;
 * - cryo's REST API (stop and leaveRunning checkpoints, restore into the same container);
 * - Docker's own `docker checkpoint create` / `docker start --checkpoint` (once per size: it is slow);
 * - Podman's `container checkpoint --export` / `container restore --import`, when podman is installed.
 * Every restore is checked: the workload must report the memory checksum it had before the checkpoint.
 *
 * BENCH_SIZES (MiB, default "512,2048"), BENCH_RUNS (default 3; medians are printed), BENCH_DOCKER=0 skips Docker.
 */
import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { parseStatsImage } from '../src/adapters/criu/stats-image.js';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { readJson } from '../harness/containers.js';
import { BUSYBOX_IMAGE, requirePrerequisites } from '../harness/prerequisites.js';
import { median, rawCriu, runMemoryContainer, timed, type Memory } from './raw-criu.js';
import { dockerCheckpointRestore } from './docker-checkpoint.js';
import { podmanAvailable, podmanCheckpointRestore } from './podman.js';
import { callApi } from '../harness/cryo-process.js';
import { fmt, fmtMs, ratio } from './format.js';

const SIZES = (process.env.BENCH_SIZES ?? '512,2048').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WITH_DOCKER = process.env.BENCH_DOCKER !== '0';
const RUNC_ROOT = '/run/docker/runtime-runc/moby';

function check(label: string, got: Memory, want: string): void {
  if (got.sha256 !== want) throw new Error(`${label}: memory checksum ${got.sha256} != ${want}`);
}

async function containerId(name: string): Promise<string> {
  return (await execa('docker', ['inspect', '-f', '{{.Id}}', name])).stdout.trim();
}

/** fsyncs every file in `dir`, as a durable checkpoint must. */
async function fsyncDir(dir: string): Promise<void> {
  const names = await readdir(dir);
  await Promise.all(
    names.map(async (n) => {
      const h = await open(path.join(dir, n), 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    }),
  );
}

interface RuncTimes {
  leave: number;
  leaveFrozen: number;
  stop: number;
  stopFrozen: number;
  stopFsync: number;
}

async function benchRunc(mib: number): Promise<RuncTimes> {
  const name = `cryo-bench-runc-${process.pid}`;
  const dir = await mkdtemp(path.join('/var/lib', 'cryo-bench-runc-'));
  try {
    await runMemoryContainer(name, mib);
    const id = await containerId(name);
    const dump = async (label: string, leaveRunning: boolean) => {
      const images = path.join(dir, label);
      const [, ms] = await timed(() =>
        execa('runc', [
          '--root',
          RUNC_ROOT,
          'checkpoint',
          '--image-path',
          images,
          '--work-path',
          images,
          ...(leaveRunning ? ['--leave-running'] : []),
          id,
        ]),
      );
      const stats = parseStatsImage(await readFile(path.join(images, 'stats-dump')));
      return { ms, frozen: stats.frozenMs ?? 0, images };
    };
    const leave = await dump('leave', true);
    const stop = await dump('stop', false);
    const [, stopFsync] = await timed(() => fsyncDir(stop.images));
    return { leave: leave.ms, leaveFrozen: leave.frozen, stop: stop.ms, stopFrozen: stop.frozen, stopFsync };
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
}

interface CryoTimes {
  leave: number;
  leaveFrozen: number;
  stop: number;
  stopFrozen: number;
  restore: number;
  /** Writing the stop checkpoint's archive to a file (what `podman checkpoint --export` also does). */
  export: number;
  /** Importing that file and restoring it into a new container (`podman restore --import`). */
  importRestore: number;
}

async function benchCryo(mib: number): Promise<CryoTimes> {
  const dataDir = await mkdtemp(path.join('/var/lib', 'cryo-bench-'));
  const server = await startServer(loadConfig({}, { listen: '127.0.0.1:0', dataDir, logLevel: 'warn' }));
  const name = `cryo-bench-cryo-${process.pid}`;
  const copy = `${name}-imported`;
  try {
    const before = await runMemoryContainer(name, mib);
    const call = (method: string, url: string, body?: unknown) => callApi(server, method, url, body);
    const frozen = (cp: Record<string, unknown>) => (cp.stats as { frozenMs?: number }).frozenMs ?? NaN;
    const [lcp, leave] = await timed(() =>
      call('POST', `/v1/containers/${name}/checkpoints`, { leaveRunning: true }),
    );
    const [scp, stop] = await timed(() => call('POST', `/v1/containers/${name}/checkpoints`, {}));
    const [, restore] = await timed(() => call('POST', `/v1/checkpoints/${String(scp.id)}/restore`));
    check('cryo', await readJson<Memory>(name, 60_000, 8080, 120_000), before.initial);

    const auth = ['-fsS', '-H', `authorization: Bearer ${server.token}`];
    const file = path.join(dataDir, 'export.tar');
    const [, exported] = await timed(() =>
      execa('curl', [...auth, '-o', file, `${server.url}/v1/checkpoints/${String(scp.id)}/archive`]),
    );
    await execa('docker', ['rm', '-f', name]);
    await call('DELETE', `/v1/checkpoints/${String(scp.id)}`);
    await call('DELETE', `/v1/checkpoints/${String(lcp.id)}`);
    const [, importRestore] = await timed(async () => {
      const { stdout } = await execa('curl', [
        ...auth,
        '-H',
        'content-type: application/x-tar',
        '-H',
        'expect:',
        // -T streams the file; --data-binary would read it all into memory first.
        '-X',
        'POST',
        '-T',
        file,
        `${server.url}/v1/checkpoints`,
      ]);
      const imported = JSON.parse(stdout) as { id: string };
      await call('POST', `/v1/checkpoints/${imported.id}/restore`, { name: copy });
    });
    check('cryo import', await readJson<Memory>(copy, 60_000, 8080, 120_000), before.initial);
    return {
      leave,
      leaveFrozen: frozen(lcp),
      stop,
      stopFrozen: frozen(scp),
      restore,
      export: exported,
      importRestore,
    };
  } finally {
    await execa('docker', ['rm', '-f', name, copy], { reject: false });
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Docker's fixed cost of starting a stopped container, which every restore through Docker pays. */
async function dockerStartCost(): Promise<number> {
  const name = `cryo-bench-start-${process.pid}`;
  try {
    await execa('docker', [
      'run',
      '-d',
      '--name',
      name,
      '-p',
      '127.0.0.1::8080',
      BUSYBOX_IMAGE,
      'sleep',
      '1000',
    ]);
    await execa('docker', ['kill', name]);
    const [, ms] = await timed(() => execa('docker', ['start', name]));
    return ms;
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
  }
}

await requirePrerequisites();
const podman = await podmanAvailable();
console.log(
  `kernel ${os.release()}, ${os.cpus().length} cores, ${RUNS} runs per size (medians), podman: ${podman ?? 'not installed'}`,
);
const startCost = await dockerStartCost();
for (const mib of SIZES) {
  const criu: { dump: number; restore: number }[] = [];
  const runc: RuncTimes[] = [];
  const cryo: CryoTimes[] = [];
  for (let i = 0; i < RUNS; i++) {
    criu.push(await rawCriu(mib, false));
    runc.push(await benchRunc(mib));
    cryo.push(await benchCryo(mib));
  }
  const m = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
  const r = {
    criuDump: m(criu, (x) => x.dump),
    criuRestore: m(criu, (x) => x.restore),
    runcLeave: m(runc, (x) => x.leave),
    runcLeaveFrozen: m(runc, (x) => x.leaveFrozen),
    runcStop: m(runc, (x) => x.stop),
    runcStopFrozen: m(runc, (x) => x.stopFrozen),
    runcStopDurable: m(runc, (x) => x.stop + x.stopFsync),
    cryoLeave: m(cryo, (x) => x.leave),
    cryoLeaveFrozen: m(cryo, (x) => x.leaveFrozen),
    cryoStop: m(cryo, (x) => x.stop),
    cryoStopFrozen: m(cryo, (x) => x.stopFrozen),
    cryoRestore: m(cryo, (x) => x.restore),
    cryoExport: m(cryo, (x) => x.stop + x.export),
    cryoImport: m(cryo, (x) => x.importRestore),
  };
  const docker = WITH_DOCKER ? await dockerCheckpointRestore(mib) : undefined;
  const pod = podman ? await podmanCheckpointRestore(mib) : undefined;

  console.log(`\n## ${mib} MiB`);
  console.log('| path | checkpoint (stop) | checkpoint (leave running) | frozen (stop / leave) | restore |');
  console.log('| --- | --- | --- | --- | --- |');
  console.log(`| raw criu dump / restore (plain process) | ${fmt(r.criuDump)} | | | ${fmt(r.criuRestore)} |`);
  console.log(
    `| raw runc checkpoint | ${fmt(r.runcStop)} | ${fmt(r.runcLeave)} | ${fmtMs(r.runcStopFrozen)} / ${fmtMs(r.runcLeaveFrozen)} | |`,
  );
  console.log(`| raw runc checkpoint + fsync of its images | ${fmt(r.runcStopDurable)} | | | |`);
  console.log(
    `| cryo | ${fmt(r.cryoStop)} | ${fmt(r.cryoLeave)} | ${fmtMs(r.cryoStopFrozen)} / ${fmtMs(r.cryoLeaveFrozen)} | ${fmt(r.cryoRestore)} |`,
  );
  console.log(
    `| cryo checkpoint + export to a file / import + restore as a new container | ${fmt(r.cryoExport)} | | | ${fmt(r.cryoImport)} |`,
  );
  if (docker)
    console.log(
      `| docker checkpoint create / start --checkpoint (1 run) | ${fmt(docker.checkpoint)} | | | ${fmt(docker.restore)} |`,
    );
  if (pod)
    console.log(
      `| podman checkpoint --export / restore --import (1 run) | ${fmt(pod.checkpoint)} | | | ${fmt(pod.restore)} |`,
    );
  console.log('');
  console.log(
    `cryo / raw runc checkpoint: stop ${ratio(r.cryoStop, r.runcStop)}, leave running ${ratio(r.cryoLeave, r.runcLeave)}; against runc + fsync: stop ${ratio(r.cryoStop, r.runcStopDurable)}`,
  );
  console.log(
    `cryo frozen / CRIU frozen: stop ${ratio(r.cryoStopFrozen, r.runcStopFrozen)}, leave running ${ratio(r.cryoLeaveFrozen, r.runcLeaveFrozen)}`,
  );
  console.log(
    `cryo restore / raw criu restore: ${ratio(r.cryoRestore, r.criuRestore)} (docker start of a stopped container alone: ${fmtMs(startCost)})`,
  );
  if (docker)
    console.log(
      `docker / cryo: checkpoint ${ratio(docker.checkpoint, r.cryoStop)}, restore ${ratio(docker.restore, r.cryoRestore)}`,
    );
  if (pod)
    console.log(
      `podman / cryo, end to end (checkpoint --export against checkpoint + export; restore --import against import + restore): ${ratio(pod.checkpoint, r.cryoExport)}, ${ratio(pod.restore, r.cryoImport)}`,
    );
}
