/**
 * The sidecar's costs, against the same job without them, in the same run:
 * 1. the word-count job's throughput (unthrottled, BENCH_WC_LINES lines per source) while cryo takes an
 *    `application: "only"` checkpoint every second, as a ratio of its throughput without checkpoints;
 * 2. `application: "only"` checkpoints of a job holding BENCH_STATE_MB of keyed state, and its application restore.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../src/domain/checkpoint.js';
import { sleep } from '../harness/containers.js';
import { TestCryo } from '../harness/cryo.js';
import { NODE_IMAGE, repoRoot, requirePrerequisites } from '../harness/prerequisites.js';
import { median } from './raw-criu.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WC_LINES = Number(process.env.BENCH_WC_LINES ?? 600_000);
const STATE_MB = Number(process.env.BENCH_STATE_MB ?? 100);
const VALUE_BYTES = 1000;
const PARTS = new Set((process.env.BENCH_PARTS ?? 'throughput,state').split(','));

const mounts = (input: string, output?: string) => [
  '-v',
  `${repoRoot}dist/cryo-sidecar.mjs:/opt/cryo/cryo-sidecar.mjs:ro`,
  '-v',
  `${input}:/data/in:ro`,
  ...(output ? ['-v', `${output}:/data/out`] : []),
];

await requirePrerequisites();
const cryo = await TestCryo.start();
const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-bench-sidecar-'));
const names: string[] = [];
console.log(`sidecar bench: kernel ${os.release()}, ${os.cpus().length} cores, node ${process.version}`);

async function post<T>(url: string, body: unknown): Promise<T> {
  const res = await cryo.api<T>('POST', url, body);
  if (res.status !== 201) throw new Error(`${url}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function waitRegistered(name: string): Promise<void> {
  for (let i = 0; ; i++) {
    if ((await cryo.api('GET', `/v1/containers/${name}/operators`)).status === 200) return;
    if (i > 300) throw new Error(`${name} never registered`);
    await sleep(50);
  }
}

/** Runs fixtures/workloads/<script> in the node image with cryo's SDK mounted, until its sidecar answers. */
async function startJob(name: string, script: string, input: string, output?: string): Promise<string> {
  names.push(name);
  await execa('docker', [
    'run',
    '-d',
    '--name',
    name,
    ...mounts(input, output),
    NODE_IMAGE,
    '/usr/bin/node',
    `/app/${script}`,
  ]);
  await waitRegistered(name);
  return name;
}

/** The job's own report of how long it took to read and process its input. */
async function finishedMs(name: string, pattern: RegExp): Promise<number> {
  for (let i = 0; ; i++) {
    const { stdout } = await execa('docker', ['logs', name]);
    const m = pattern.exec(stdout);
    if (m) return Number(m[1]);
    if (i > 1200) throw new Error(`${name} did not finish: ${stdout}`);
    await sleep(100);
  }
}

try {
  // 1. Throughput with and without a checkpoint every second.
  if (PARTS.has('throughput')) {
    const input = path.join(dir, 'wc-in');
    await execa('mkdir', ['-p', input]);
    let seed = 1;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let f = 0; f < 2; f++) {
      const lines = Array.from({ length: WC_LINES }, () =>
        Array.from({ length: 8 }, () => `w${Math.floor(random() * 5000)}`).join(' '),
      );
      await writeFile(path.join(input, `input-${f}.txt`), `${lines.join('\n')}\n`);
    }
    const throughput = async (checkpointEveryMs: number | undefined) => {
      const out = await mkdtemp(path.join(dir, 'wc-out-'));
      const name = await startJob(
        `cryo-bench-wc-${process.pid}-${names.length}`,
        'wordcount.mjs',
        input,
        out,
      );
      let checkpoints = 0;
      let stop = false;
      const loop = (async () => {
        while (checkpointEveryMs !== undefined && !stop) {
          await sleep(checkpointEveryMs);
          if (stop) break;
          const res = await cryo.api('POST', `/v1/containers/${name}/checkpoints`, { application: 'only' });
          if (res.status === 201) checkpoints++;
        }
      })();
      const ms = await finishedMs(name, /finished \d+ lines in (\d+) ms/);
      stop = true;
      await loop;
      await execa('docker', ['rm', '-f', name]);
      return { ms, checkpoints, linesPerS: (2 * WC_LINES) / (ms / 1000) };
    };
    const plain: number[] = [];
    const checkpointed: number[] = [];
    let taken = 0;
    for (let r = 0; r < RUNS; r++) {
      plain.push((await throughput(undefined)).linesPerS);
      const c = await throughput(1000);
      checkpointed.push(c.linesPerS);
      taken += c.checkpoints;
    }
    const ratio = median(checkpointed) / median(plain);
    console.log(`\nword count, 2 sources x ${WC_LINES} lines, count parallelism 2, median of ${RUNS}:`);
    console.log('| run | lines/s |');
    console.log('| --- | --- |');
    console.log(`| no checkpoints | ${Math.round(median(plain))} (${plain.map(Math.round).join(', ')}) |`);
    console.log(
      `| application: "only" every 1 s (${taken} checkpoints in all) | ${Math.round(median(checkpointed))} (${checkpointed.map(Math.round).join(', ')}) |`,
    );
    console.log(`| ratio | ${(ratio * 100).toFixed(1)} % |`);
  }

  // 2. A job holding STATE_MB of keyed state.
  if (PARTS.has('state')) {
    const keys = Math.round((STATE_MB * 1_000_000) / VALUE_BYTES);
    const ksIn = path.join(dir, 'ks-in');
    await execa('mkdir', ['-p', ksIn]);
    await writeFile(
      path.join(ksIn, 'keys.txt'),
      `${Array.from({ length: keys }, (_, i) => `key-${i}`).join('\n')}\n`,
    );
    const name = await startJob(`cryo-bench-ks-${process.pid}`, 'keyed-state.mjs', ksIn);
    await finishedMs(name, /loaded \d+ keys in (\d+) ms/);
    // Deleting every checkpoint of the job makes the next one full; the one after it references all unchanged blocks.
    const full = { wall: [] as number[], cut: [] as number[] };
    const incr = { wall: [] as number[], cut: [] as number[] };
    let bytes = 0;
    let last: Checkpoint | undefined;
    for (let r = 0; r < Math.max(RUNS, 5); r++) {
      for (const into of [full, incr]) {
        const t0 = performance.now();
        const ck = await post<Checkpoint>(`/v1/containers/${name}/checkpoints`, { application: 'only' });
        into.wall.push(performance.now() - t0);
        into.cut.push(ck.stats.dumpMs);
        bytes = ck.application!.stateBytes;
        if (last) await cryo.api('DELETE', `/v1/checkpoints/${last.id}`);
        last = ck;
      }
      if (r < Math.max(RUNS, 5) - 1) {
        await cryo.api('DELETE', `/v1/checkpoints/${last!.id}`);
        last = undefined;
      }
    }
    await execa('docker', ['kill', name]);
    const restored = await post<RestoreResult>(`/v1/checkpoints/${last!.id}/restore`, {});
    const row = (what: string, xs: number[]) =>
      console.log(`| ${what} | ${Math.round(median(xs))} ms | ${xs.map(Math.round).join(', ')} |`);
    console.log(
      `\nkeyed state: ${keys} keys x ${VALUE_BYTES} B, parallelism 2; state ${(bytes / 1e6).toFixed(1)} MB`,
    );
    console.log('| operation | median | runs |');
    console.log('| --- | --- | --- |');
    row('application: "only" checkpoint, full (wall time of the POST)', full.wall);
    row('of which the operator cut (trigger to durable _metadata)', full.cut);
    row('application: "only" checkpoint, incremental, nothing changed (wall time)', incr.wall);
    row('application restore (docker start, state loaded)', [restored.restoreMs]);
    await cryo.api('DELETE', `/v1/checkpoints/${last!.id}`);
  }
} finally {
  if (names.length > 0) await execa('docker', ['rm', '-f', ...names], { reject: false });
  await cryo.stop();
  await rm(dir, { recursive: true, force: true });
}
