/**
 * Live migration of the memory workload (BENCH_MIB, default 512) from this host's dockerd to a second Docker
 * host (network namespace, second dockerd, second cryo), against the raw floor measured in the same run:
 * `criu dump` + a copy of the images + `criu restore` of the same workload as a plain process; and the Docker
 * floor: the raw floor plus the target dockerd's `docker start` of a small created container, since the target's
 * Docker must own the result. BENCH_RUNS (default 3) floor/migration pairs are run alternately; medians are printed.
 * BENCH_DISK=1 adds, to each run, the same workload with BENCH_VOLUME_MIB (1024) in a volume and BENCH_ROOTFS_MIB
 * (200) in its root filesystem, migrated with disk pre-copy and without.
 */
import os from 'node:os';
import { execa } from 'execa';
import type { Checkpoint } from '../src/domain/checkpoint.js';
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
/** BENCH_DISK=1: each run also migrates the workload with a volume and root-filesystem files, with and without disk pre-copy. */
const DISK = process.env.BENCH_DISK === '1';
const VOLUME_MIB = Number(process.env.BENCH_VOLUME_MIB ?? 1024);
const ROOTFS_MIB = Number(process.env.BENCH_ROOTFS_MIB ?? 200);
type Variant = 'plain' | 'disk, pre-copy' | 'disk, no pre-copy';
const variants: Variant[] = DISK ? ['plain', 'disk, pre-copy', 'disk, no pre-copy'] : ['plain'];
const floors: { dump: number; copy: number; restore: number; total: number; dockerStart: number }[] = [];
interface Run {
  /** Post-copy: `runc checkpoint --lazy-pages` until its page server listened (the checkpoint's stats.dumpMs). */
  lazyDumpMs?: number;
  /** Post-copy: one full checksum of the workload's memory on A before, and on B as its pages phase began. */
  checksumOnA?: number;
  checksumDuringPages?: number;
  downtime: number;
  total: number;
  phases: Map<MigrationPhaseName, number>;
  bytes: number;
}
const runs = new Map<Variant, Run[]>(variants.map((v) => [v, []]));

/** Files written by the workload's own node: VOLUME_MIB into its volume /data, ROOTFS_MIB into /srv. */
async function writeDisk(): Promise<void> {
  const script = `const fs=require('fs'),c=require('crypto');const b=c.randomBytes(1<<20);
for(const [dir,mib] of [['/data',${VOLUME_MIB}],['/srv',${ROOTFS_MIB}]]){fs.mkdirSync(dir,{recursive:true});
for(let f=0;f*64<mib;f++){const fd=fs.openSync(dir+'/blob-'+f+'.bin','w');for(let i=0;i<Math.min(64,mib-f*64);i++){b.writeUInt32LE(i+f*64,0);fs.writeSync(fd,b);}fs.closeSync(fd);}}`;
  await execa('docker', ['exec', name, '/usr/bin/node', '-e', script]);
}

async function migrateOnce(variant: Variant): Promise<Run> {
  const disk = variant !== 'plain';
  const before = await runMemoryContainer(name, MIB, undefined, disk ? ['-v', '/data'] : []);
  const volume = disk ? await volumeOf(name) : undefined;
  try {
    // Data at rest: a file written within 100 ms of the pre-copy's read of it is sent again after the freeze.
    if (disk) await writeDisk().then(() => sleep(1000));
    const postCopy = STRATEGY !== 'stop-and-copy';
    const checksumOnA = postCopy ? await checksumMs((args) => execa('docker', args)) : undefined;
    let duringPages: Promise<number | undefined> | undefined;
    let lazyDumpMs: number | undefined;
    const [migration, total] = await timed(async () => {
      const started = await a.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
        target: b.url,
        targetToken: b.token,
        strategy: STRATEGY,
        diskPreCopy: variant !== 'disk, no pre-copy',
      });
      for (;;) {
        const m = await a.api<Migration>('GET', `/v1/migrations/${started.id}`);
        if (m.status !== 'running') return m;
        // The workload's own throughput while its pages come: a checksum reads every page of its memory.
        if (postCopy && !duringPages && m.phases.some((p) => p.name === 'pages')) {
          duringPages = checksumMs((args) => hostB.docker(args)).catch(() => undefined);
          // The checkpoint goes once every page is in: its dump time is read while the pages come.
          const { stats } = await a.api<Checkpoint>('GET', `/v1/checkpoints/${m.checkpointId!}`);
          lazyDumpMs = stats.dumpMs;
          if (stats.memdumpMs !== undefined) console.log(`  CRIU's memdump: ${fmt(stats.memdumpMs)}`);
        }
        await sleep(20);
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
    if (disk) {
      const sizes = await hostB.docker(['exec', name, '/usr/bin/node', '-e', SIZES]);
      if (sizes.stdout !== `${VOLUME_MIB}/${ROOTFS_MIB}`) throw new Error(`files on B: ${sizes.stdout} MiB`);
    }
    const checksumDuringPages = await duringPages;
    console.log(
      `${variant}: downtime ${fmt(migration.downtimeMs!)} (${migration.phases
        .map((p) => `${p.name} ${fmt(p.ms ?? 0)}`)
        .join(', ')}), ${migration.bytesSent} bytes, total ${fmt(total)}${
        checksumOnA !== undefined
          ? `; a checksum of its memory: ${fmt(checksumOnA)} on A, ${checksumDuringPages === undefined ? 'none' : fmt(checksumDuringPages)} on B from the start of its pages phase`
          : ''
      }`,
    );
    return {
      ...(lazyDumpMs !== undefined ? { lazyDumpMs } : {}),
      ...(checksumOnA !== undefined ? { checksumOnA } : {}),
      ...(checksumDuringPages !== undefined ? { checksumDuringPages } : {}),
      downtime: migration.downtimeMs!,
      total,
      phases: new Map(migration.phases.map((p) => [p.name, p.ms ?? 0])),
      bytes: migration.bytesSent,
    };
  } finally {
    await hostB.docker(['rm', '-f', '-v', name]).catch(() => undefined);
    await execa('docker', ['rm', '-f', name], { reject: false });
    if (volume) await execa('docker', ['volume', 'rm', '-f', volume], { reject: false });
  }
}

/** How long one request of the memory workload takes (it hashes all its memory), timed inside the container. */
async function checksumMs(run: (args: string[]) => Promise<{ stdout: string }>): Promise<number> {
  const script =
    "const s=Date.now();fetch('http://127.0.0.1:8080/').then(r=>r.json()).then(()=>process.stdout.write(String(Date.now()-s)))";
  return Number((await run(['exec', name, '/usr/bin/node', '-e', script])).stdout);
}

/** MiB of blob files in /data and in /srv, as "<volume>/<rootfs>". */
const SIZES = `const fs=require('fs');const m=d=>fs.readdirSync(d).filter(f=>f.startsWith('blob-')).reduce((s,f)=>s+fs.statSync(d+'/'+f).size,0)/1048576;process.stdout.write(m('/data')+'/'+m('/srv'))`;

async function volumeOf(container: string): Promise<string> {
  const { stdout } = await execa('docker', [
    'inspect',
    '-f',
    '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}',
    container,
  ]);
  return stdout.trim();
}

try {
  await hostB.loadImage(NODE_IMAGE);
  await hostB.loadImage(BUSYBOX_IMAGE);
  for (let run = 0; run < RUNS; run++) {
    const raw = await rawCriu(MIB, true);
    const dockerStart = await dockerStartMs(hostB.socket);
    floors.push({ ...raw, total: raw.dump + raw.copy + raw.restore, dockerStart });
    console.log(`run ${run + 1}: floor ${fmt(floors.at(-1)!.total)}, docker start ${fmt(dockerStart)}`);
    for (const variant of variants) runs.get(variant)!.push(await migrateOnce(variant));
  }
  const m = (f: (x: (typeof floors)[number]) => number) => median(floors.map(f));
  const floor = m((f) => f.total);
  const dockerFloor = m((f) => f.total + f.dockerStart);
  const downtimeOf = (v: Variant) => median(runs.get(v)!.map((r) => r.downtime));
  const downtime = downtimeOf('plain');
  console.log('\n| path | time |');
  console.log('| --- | --- |');
  console.log(
    `| raw floor: criu dump ${fmt(m((f) => f.dump))} + copy ${fmt(m((f) => f.copy))} + criu restore ${fmt(m((f) => f.restore))} | ${fmt(floor)} |`,
  );
  console.log(
    `| Docker floor: raw floor + docker start of a created container on B ${fmt(m((f) => f.dockerStart))} | ${fmt(dockerFloor)} |`,
  );
  for (const v of variants) {
    const r = runs.get(v)!;
    console.log(`| cryo migration downtime, ${v} (freeze to running on B) | ${fmt(downtimeOf(v))} |`);
    console.log(`| cryo migration total, ${v} (request to done) | ${fmt(median(r.map((x) => x.total)))} |`);
  }
  for (const v of variants) {
    console.log(`\n| phase (${v}) | time |`);
    console.log('| --- | --- |');
    const r = runs.get(v)!;
    for (const phase of r[0]!.phases.keys())
      console.log(`| ${phase} | ${fmt(median(r.map((x) => x.phases.get(phase) ?? 0)))} |`);
  }
  console.log(
    `\ndowntime / raw floor (medians): ${(downtime / floor).toFixed(2)}x; downtime / Docker floor: ${(downtime / dockerFloor).toFixed(2)}x; bytes sent ${runs.get('plain')![0]!.bytes}`,
  );
  const plain = runs.get('plain')!;
  if (plain[0]?.checksumOnA !== undefined) {
    const onA = median(plain.map((r) => r.checksumOnA!));
    const during = plain.flatMap((r) => (r.checksumDuringPages === undefined ? [] : [r.checksumDuringPages]));
    console.log(
      `workload throughput (a checksum of all ${MIB} MiB): ${fmt(onA)} on A (${(MIB / (onA / 1000)).toFixed(0)} MiB/s), ${
        during.length
          ? `${fmt(median(during))} on B while its pages came (${(MIB / (median(during) / 1000)).toFixed(0)} MiB/s)`
          : 'not measured on B'
      }; runc checkpoint --lazy-pages ${fmt(median(plain.map((r) => r.lazyDumpMs ?? 0)))}; pages phase ${fmt(median(plain.map((r) => r.phases.get('pages') ?? 0)))}, source released after ${fmt(median(plain.map((r) => r.total)))}`,
    );
  }
  if (DISK)
    console.log(
      `with ${VOLUME_MIB} MiB in a volume and ${ROOTFS_MIB} MiB in the root filesystem: downtime / plain ${(downtimeOf('disk, pre-copy') / downtime).toFixed(2)}x with pre-copy, ${(downtimeOf('disk, no pre-copy') / downtime).toFixed(2)}x without`,
    );
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  await a.stop();
  await b.stop();
  await hostB.stop();
}
