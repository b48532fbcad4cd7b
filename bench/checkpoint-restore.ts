/**
 * Checkpoint and restore of the memory workload (BENCH_MIB, default 512) through cryo, through Docker's own
 * `docker checkpoint create` / `docker start --checkpoint`, and through raw `criu dump` / `criu restore` of the
 * same workload run as a plain process, all in one run. Prints the times and the ratios against the raw tools.
 * Every path is checked: the restored workload must report the checksum it had before the checkpoint.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { readJson } from '../test/helpers/containers.js';
import { rawCriu, runMemoryContainer, timed, type Memory } from './raw-criu.js';
import { requirePrerequisites } from '../test/helpers/prerequisites.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);

function check(label: string, got: Memory, want: string): void {
  if (got.sha256 !== want) throw new Error(`${label}: memory checksum ${got.sha256} != ${want}`);
}

async function benchCryo(): Promise<{ checkpoint: number; restore: number; frozen?: number }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cryo-bench-'));
  const server = await startServer(loadConfig({}, { listen: '127.0.0.1:0', dataDir, logLevel: 'warn' }));
  const name = `cryo-bench-cryo-${process.pid}`;
  try {
    const before = await runMemoryContainer(name, MIB);
    const call = async (method: string, url: string, body?: unknown) => {
      const res = await fetch(`${server.url}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${server.token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const json = (await res.json()) as Record<string, unknown>;
      if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const [cp, checkpoint] = await timed(() => call('POST', `/v1/containers/${name}/checkpoints`, {}));
    const [, restore] = await timed(() => call('POST', `/v1/checkpoints/${String(cp.id)}/restore`));
    check('cryo', await readJson<Memory>(name, 60_000, 8080, 120_000), before.initial);
    const stats = cp.stats as { frozenMs?: number };
    return { checkpoint, restore, ...(stats.frozenMs !== undefined ? { frozen: stats.frozenMs } : {}) };
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function benchDocker(): Promise<{ checkpoint: number; restore: number }> {
  const name = `cryo-bench-docker-${process.pid}`;
  try {
    const before = await runMemoryContainer(name, MIB);
    const [, checkpoint] = await timed(() => execa('docker', ['checkpoint', 'create', name, 'bench']));
    const [, restore] = await timed(() => execa('docker', ['start', '--checkpoint', 'bench', name]));
    check('docker', await readJson<Memory>(name, 60_000, 8080, 120_000), before.initial);
    return { checkpoint, restore };
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
    // containerd 1.6 leaves every restore's unpacked copy in /tmp (containerd/containerd#8009).
    await execa('sh', ['-c', 'rm -rf /tmp/ctrd-checkpoint*'], { reject: false });
  }
}

async function benchCriu(): Promise<{ checkpoint: number; restore: number }> {
  const raw = await rawCriu(MIB, false);
  return { checkpoint: raw.dump, restore: raw.restore };
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

await requirePrerequisites();
console.log(`memory workload: ${MIB} MiB, kernel ${os.release()}, ${os.cpus().length} cores`);
const criu = await benchCriu();
const docker = await benchDocker();
const cryo = await benchCryo();
console.log('');
console.log('| path | checkpoint | restore |');
console.log('| --- | --- | --- |');
console.log(`| raw criu dump / restore | ${fmt(criu.checkpoint)} | ${fmt(criu.restore)} |`);
console.log(
  `| docker checkpoint create / start --checkpoint | ${fmt(docker.checkpoint)} | ${fmt(docker.restore)} |`,
);
console.log(`| cryo (REST, Docker path) | ${fmt(cryo.checkpoint)} | ${fmt(cryo.restore)} |`);
console.log('');
console.log(
  `cryo / raw criu:  checkpoint ${ratio(cryo.checkpoint, criu.checkpoint)}, restore ${ratio(cryo.restore, criu.restore)}`,
);
console.log(
  `cryo / docker:    checkpoint ${ratio(cryo.checkpoint, docker.checkpoint)}, restore ${ratio(cryo.restore, docker.restore)}`,
);
console.log(
  `docker / raw criu: checkpoint ${ratio(docker.checkpoint, criu.checkpoint)}, restore ${ratio(docker.restore, criu.restore)}`,
);
