/**
 * The floor every bench compares against: the memory workload run as a plain process, dumped with `criu dump`,
 * optionally copied (as a migration must), and restored with `criu restore`, checked by its memory checksum.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { freePort, readJson, sleep } from '../harness/containers.js';
import { NODE_IMAGE } from '../harness/prerequisites.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface Memory {
  sha256: string;
  initial: string;
}

export interface RawTimes {
  dump: number;
  copy: number;
  restore: number;
}

/** The middle value (the upper one of an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

/** The workload's memory report on a loopback port, retried until it answers. */
export async function fetchMemory(port: number, timeoutMs = 120_000): Promise<Memory> {
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

/** Milliseconds for `criu dump`, the copy of the images (when `copyImages`), and `criu restore -d`. */
export async function rawCriu(mib: number, copyImages: boolean): Promise<RawTimes> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-bench-criu-'));
  const images = path.join(dir, 'images');
  const copied = path.join(dir, 'copied');
  const port = await freePort();
  const proc = execa('node', [path.join(repoRoot, 'fixtures/workloads/memory.js')], {
    env: { MEMORY_MIB: String(mib), MEMORY_PORT: String(port) },
    detached: true,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'ignore',
    reject: false,
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error('could not start the raw workload');
  try {
    const before = await fetchMemory(port);
    await execa('mkdir', ['-p', images]);
    const [, dump] = await timed(() =>
      execa('criu', ['dump', '-t', String(pid), '-D', images, '-o', 'dump.log']),
    );
    await proc; // reaped: CRIU cannot restore over a PID that is still a zombie
    let copy = 0;
    let from = images;
    if (copyImages) {
      [, copy] = await timed(() => execa('cp', ['-r', images, copied]));
      from = copied;
    }
    const [, restore] = await timed(() => execa('criu', ['restore', '-D', from, '-o', 'restore.log', '-d']));
    const after = await fetchMemory(port);
    if (after.sha256 !== before.initial)
      throw new Error(`raw criu: memory checksum ${after.sha256} != ${before.initial}`);
    return { dump, copy, restore };
  } finally {
    await execa('kill', ['-9', String(pid)], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the memory workload in a container (port 8080 on a free loopback port) and waits until it answers. */
export async function runMemoryContainer(
  name: string,
  mib: number,
  runtime?: string,
  extraArgs: string[] = [],
  nodeArgs: string[] = [],
): Promise<Memory> {
  await execa('docker', [
    'run',
    '-d',
    '--name',
    name,
    ...(runtime ? ['--runtime', runtime] : []),
    '-p',
    '127.0.0.1::8080',
    '-e',
    `MEMORY_MIB=${mib}`,
    ...extraArgs,
    NODE_IMAGE,
    '/usr/bin/node',
    ...nodeArgs,
    '/app/memory.js',
  ]);
  // The workload hashes all its memory on every request: give each request time.
  return readJson<Memory>(name, 600_000, 8080, 120_000);
}
