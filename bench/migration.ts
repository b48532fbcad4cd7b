/**
 * Live migration of the memory workload (BENCH_MIB, default 512) from this host's dockerd to a second Docker
 * host (network namespace, second dockerd, second cryo), against the raw floor measured in the same run:
 * `criu dump` + a copy of the images + `criu restore` of the same workload as a plain process.
 */
import os from 'node:os';
import { execa } from 'execa';
import type { Migration } from '../src/domain/migration.js';
import { sleep } from '../test/helpers/containers.js';
import { TestCryo } from '../test/helpers/cryo.js';
import { NODE_IMAGE, requirePrerequisites } from '../test/helpers/prerequisites.js';
import { SecondHost } from '../test/helpers/second-host.js';
import { rawCriu, runMemoryContainer, timed } from './raw-criu.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

await requirePrerequisites();
console.log(`migration bench: ${MIB} MiB memory workload, kernel ${os.release()}, ${os.cpus().length} cores`);
const raw = await rawCriu(MIB, true);
const floor = raw.dump + raw.copy + raw.restore;

const hostB = await SecondHost.start();
const a = await TestCryo.start();
const b = await TestCryo.start({
  dockerSocket: hostB.socket,
  containerdSocket: hostB.containerdSocket,
  dockerExecRoot: hostB.execRoot,
});
const name = `cryo-bench-migrate-${process.pid}`;
try {
  await hostB.loadImage(NODE_IMAGE);
  const before = await runMemoryContainer(name, MIB);
  const [migration, total] = await timed(async () => {
    const started = await a.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
      target: b.url,
      targetToken: b.token,
    });
    if (started.status !== 202) throw new Error(JSON.stringify(started.body));
    for (;;) {
      const m = (await a.api<Migration>('GET', `/v1/migrations/${started.body.id}`)).body;
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

  console.log('\n| path | time |');
  console.log('| --- | --- |');
  console.log(
    `| raw floor: criu dump ${fmt(raw.dump)} + copy ${fmt(raw.copy)} + criu restore ${fmt(raw.restore)} | ${fmt(floor)} |`,
  );
  console.log(`| cryo migration downtime (freeze to running on B) | ${fmt(migration.downtimeMs!)} |`);
  console.log(`| cryo migration total (request to done) | ${fmt(total)} |`);
  console.log('\n| phase | time |');
  console.log('| --- | --- |');
  for (const p of migration.phases) console.log(`| ${p.name} (${p.status}) | ${fmt(p.ms ?? 0)} |`);
  console.log(
    `\ndowntime / raw floor: ${(migration.downtimeMs! / floor).toFixed(2)}x; bytes sent ${migration.bytesSent}`,
  );
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  await a.stop();
  await b.stop();
  await hostB.stop();
}
