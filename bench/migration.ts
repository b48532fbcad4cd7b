/**
 * Live migration of the memory workload (BENCH_MIB, default 512) from this host's dockerd to a second Docker
 * host (network namespace, second dockerd, second cryo), against the raw floor measured in the same run:
 * `criu dump` + a copy of the images + `criu restore` of the same workload as a plain process; and the Docker
 * floor: the raw floor plus the target dockerd's `docker start` of a small created container, since the target's
 * Docker must own the result. BENCH_RUNS (default 3) floor/migration pairs are run alternately; medians are printed.
 */
import os from 'node:os';
import { execa } from 'execa';
import type { Migration, MigrationPhaseName } from '../src/domain/migration.js';
import { sleep } from '../harness/containers.js';
import { BUSYBOX_IMAGE, NODE_IMAGE, requirePrerequisites } from '../harness/prerequisites.js';
import { SecondHost } from '../harness/second-host.js';
import { CryoProcess } from '../harness/cryo-process.js';
import { median, rawCriu, runMemoryContainer, timed } from './raw-criu.js';
import { dockerStartMs } from './docker-start.js';
import { fmt } from './format.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** stop-and-copy (default), post-copy or auto, as a migration request takes it. */
const STRATEGY = process.env.BENCH_STRATEGY ?? 'stop-and-copy';

await requirePrerequisites();
console.log(
  `migration bench: ${MIB} MiB memory workload, ${STRATEGY}, kernel ${os.release()}, ${os.cpus().length} cores, ${RUNS} runs (medians)`,
);
// Each agent is a process of its own, as on two hosts: neither waits for the other's event loop.
const hostB = await SecondHost.start();
// B's dockerd (and so its lazy-pages daemon) reaches A's page server over the veth pair.
const a = await CryoProcess.start({ CRYO_PAGE_SERVER_ADDRESS: hostB.hostAddress });
const b = await CryoProcess.start({
  CRYO_DOCKER_SOCKET: hostB.socket,
  CRYO_CONTAINERD_SOCKET: hostB.containerdSocket,
  CRYO_DOCKER_EXEC_ROOT: hostB.execRoot,
});
const name = `cryo-bench-migrate-${process.pid}`;
const floors: { dump: number; copy: number; restore: number; total: number; dockerStart: number }[] = [];
const runs: { downtime: number; total: number; phases: Map<MigrationPhaseName, number>; bytes: number }[] =
  [];
try {
  await hostB.loadImage(NODE_IMAGE);
  await hostB.loadImage(BUSYBOX_IMAGE);
  for (let run = 0; run < RUNS; run++) {
    const raw = await rawCriu(MIB, true);
    const dockerStart = await dockerStartMs(hostB.socket);
    floors.push({ ...raw, total: raw.dump + raw.copy + raw.restore, dockerStart });
    const before = await runMemoryContainer(name, MIB);
    const [migration, total] = await timed(async () => {
      const started = await a.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
        target: b.url,
        targetToken: b.token,
        strategy: STRATEGY,
      });
      for (;;) {
        const m = await a.api<Migration>('GET', `/v1/migrations/${started.id}`);
        if (m.status !== 'running') return m;
        await sleep(50);
      }
    });
    if (migration.status !== 'succeeded') throw new Error(JSON.stringify(migration));
    const check = await hostB.docker([
      'exec',
      name,
      '/usr/bin/node',
      '-e',
      "fetch('http://127.0.0.1:8080/').then(r=>r.json()).then(j=>process.stdout.write(j.sha256))",
    ]);
    if (check.stdout !== before.initial)
      throw new Error(`memory checksum on B ${check.stdout} != ${before.initial}`);
    await hostB.docker(['rm', '-f', name]);
    runs.push({
      downtime: migration.downtimeMs!,
      total,
      phases: new Map(migration.phases.map((p) => [p.name, p.ms ?? 0])),
      bytes: migration.bytesSent,
    });
    console.log(
      `run ${run + 1}: floor ${fmt(floors.at(-1)!.total)}, docker start ${fmt(dockerStart)}, downtime ${fmt(migration.downtimeMs!)} (${migration.phases
        .map((p) => `${p.name} ${fmt(p.ms ?? 0)}`)
        .join(', ')})`,
    );
  }
  const m = (f: (x: (typeof floors)[number]) => number) => median(floors.map(f));
  const floor = m((f) => f.total);
  const dockerFloor = m((f) => f.total + f.dockerStart);
  const downtime = median(runs.map((r) => r.downtime));
  console.log('\n| path | time |');
  console.log('| --- | --- |');
  console.log(
    `| raw floor: criu dump ${fmt(m((f) => f.dump))} + copy ${fmt(m((f) => f.copy))} + criu restore ${fmt(m((f) => f.restore))} | ${fmt(floor)} |`,
  );
  console.log(
    `| Docker floor: raw floor + docker start of a created container on B ${fmt(m((f) => f.dockerStart))} | ${fmt(dockerFloor)} |`,
  );
  console.log(`| cryo migration downtime (freeze to running on B) | ${fmt(downtime)} |`);
  console.log(`| cryo migration total (request to done) | ${fmt(median(runs.map((r) => r.total)))} |`);
  console.log('\n| phase | time |');
  console.log('| --- | --- |');
  for (const phase of runs[0]!.phases.keys())
    console.log(`| ${phase} | ${fmt(median(runs.map((r) => r.phases.get(phase) ?? 0)))} |`);
  console.log(
    `\ndowntime / raw floor (medians): ${(downtime / floor).toFixed(2)}x; downtime / Docker floor: ${(downtime / dockerFloor).toFixed(2)}x; bytes sent ${runs[0]!.bytes}`,
  );
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  await a.stop();
  await b.stop();
  await hostB.stop();
}
