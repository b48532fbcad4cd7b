/**
 * Checkpoint and restore of the memory workload (BENCH_MIB, default 512) through cryo, through Docker's own
 * `docker checkpoint create` / `docker start --checkpoint`, and through raw `criu dump` / `criu restore` of the
 * same workload run as a plain process, all in one run. Prints the times and the ratios against the raw tools.
 * Every path is checked: the restored workload must report the checksum it had before the checkpoint.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { readJson, sleep } from '../test/helpers/containers.js';
import { NODE_IMAGE, requirePrerequisites } from '../test/helpers/prerequisites.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

interface Memory {
  sha256: string;
  initial: string;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}

async function fetchMemory(port: number, timeoutMs = 120_000): Promise<Memory> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      return (await res.json()) as Memory;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

async function runContainer(name: string): Promise<Memory> {
  await execa('docker', [
    'run',
    '-d',
    '--name',
    name,
    '-p',
    '127.0.0.1::8080',
    '-e',
    `MEMORY_MIB=${MIB}`,
    NODE_IMAGE,
    '/usr/bin/node',
    '/app/memory.js',
  ]);
  return readJson<Memory>(name, 180_000, 8080, 120_000);
}

function check(label: string, got: Memory, want: string): void {
  if (got.sha256 !== want) throw new Error(`${label}: memory checksum ${got.sha256} != ${want}`);
}

async function benchCryo(): Promise<{ checkpoint: number; restore: number; frozen?: number }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cryo-bench-'));
  const server = await startServer(loadConfig({}, { listen: '127.0.0.1:0', dataDir, logLevel: 'warn' }));
  const name = `cryo-bench-cryo-${process.pid}`;
  try {
    const before = await runContainer(name);
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
    const before = await runContainer(name);
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
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-bench-criu-'));
  const port = await freePort();
  const proc = execa('node', [path.join(repoRoot, 'fixtures/workloads/memory.js')], {
    env: { MEMORY_MIB: String(MIB), MEMORY_PORT: String(port) },
    detached: true,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'ignore',
    reject: false,
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error('could not start the raw workload');
  void proc.then(({ exitCode }) => {
    if (exitCode !== 0 && exitCode !== undefined) console.error(`raw workload exited with ${exitCode}`);
  });
  try {
    const before = await fetchMemory(port);
    const [, checkpoint] = await timed(() =>
      execa('criu', ['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log']),
    );
    await proc; // reaped: CRIU cannot restore over a PID that is still a zombie
    const [, restore] = await timed(() => execa('criu', ['restore', '-D', dir, '-o', 'restore.log', '-d']));
    check('criu', await fetchMemory(port), before.initial);
    return { checkpoint, restore };
  } finally {
    await execa('kill', ['-9', String(pid)], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
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
