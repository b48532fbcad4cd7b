/**
 * Export and import of a large checkpoint through a cryo service running as its own process, so that its
 * peak RSS (VmHWM, reset before each step) is cryo's alone. The disk's sequential write speed (dd with fsync)
 * is measured right before each export and each import: on these VMs it swings several-fold from one minute
 * to the next, so each step is compared with the dd next to it, and BENCH_RUNS (default 5) rounds give
 * medians. Also in the same run: the gzip and zstd ratio and speed on CRIU page images.
 * BENCH_ARCHIVE_MIB (default 2048) sets the memory workload's size.
 */
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { median, runMemoryContainer, timed } from './raw-criu.js';
import { requirePrerequisites } from '../harness/prerequisites.js';
import { CryoProcess } from '../harness/cryo-process.js';

const MIB = Number(process.env.BENCH_ARCHIVE_MIB ?? 2048);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MB = 1e6;

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

const seconds = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const [result, ms] = await timed(fn);
  return [result, ms / 1000];
};

/** MB/s of `dd if=/dev/zero bs=1M conv=fsync` writing `bytes` into `dir`. */
async function ddWriteSpeed(dir: string, bytes: number): Promise<number> {
  const file = path.join(dir, 'dd.bin');
  const count = Math.ceil(bytes / 2 ** 20);
  const [, s] = await seconds(() =>
    execa('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${count}`, 'conv=fsync'], {
      stderr: 'ignore',
    }),
  );
  await rm(file, { force: true });
  return (count * 2 ** 20) / MB / s;
}

await requirePrerequisites();
const cryo = await CryoProcess.start();
const { url, work } = cryo;
const auth = { authorization: `Bearer ${cryo.token}` };
const api = (method: string, urlPath: string, body?: unknown) => cryo.api(method, urlPath, body);
const name = `cryo-bench-archive-${process.pid}`;

// curl is the client, as for users: the figures are cryo's, not a Node client's.
async function exportTo(id: string, compress: string, file: string): Promise<number> {
  await execa('curl', [
    '-sSf',
    '-H',
    `authorization: ${auth.authorization}`,
    '-o',
    file,
    `${url}/v1/checkpoints/${id}/archive?compress=${compress}`,
  ]);
  if (file === '/dev/null') return 0;
  const handle = await open(file, 'r+');
  await handle.sync();
  await handle.close();
  return (await stat(file)).size;
}

async function importFrom(file: string): Promise<Record<string, unknown>> {
  const { stdout } = await execa('curl', [
    '-sSf',
    '-X',
    'POST',
    '-H',
    `authorization: ${auth.authorization}`,
    '-H',
    'content-type: application/x-tar',
    '-T',
    file,
    `${url}/v1/checkpoints`,
  ]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

interface Step {
  seconds: number;
  dd: number;
  rss: number;
}

const range = (xs: number[], digits = 0) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;

/**
 * One line of the table: the step's medians, and its throughput against the dd right before it and against
 * the median of every dd in the run (the disk's moods swing either figure; the report shows both).
 */
function stepRow(label: string, steps: Step[], bytes: number, ddAll: number[]): string {
  const rates = steps.map((s) => bytes / MB / s.seconds);
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  return [
    label,
    `${median(steps.map((s) => s.seconds)).toFixed(2)} s`,
    `${range(rates)} MB/s`,
    `${range(steps.map((s) => s.dd))} MB/s`,
    pct(median(rates.map((r, i) => r / steps[i]!.dd))),
    pct(median(rates) / median(ddAll)),
    `${Math.max(...steps.map((s) => s.rss)).toFixed(0)} MB`,
  ].join(' | ');
}

try {
  const pid = cryo.pid;
  console.log(`archive bench: ${MIB} MiB memory workload, ${RUNS} rounds, kernel ${os.release()}`);
  await runMemoryContainer(name, MIB);
  await resetPeak(pid);
  const cp = await api('POST', `/v1/containers/${name}/checkpoints`, { leaveRunning: true });
  let id = String(cp.id);
  const sizeBytes = Number(cp.sizeBytes);
  const archive = path.join(work, 'export.tar');
  // The first export hashes every entry for cryo.json before it sends a byte. Its dd comes after it.
  const [bytes, firstSeconds] = await seconds(() => exportTo(id, 'none', archive));
  const first: Step = {
    seconds: firstSeconds,
    rss: await peakRssMb(pid),
    dd: await ddWriteSpeed(work, sizeBytes),
  };

  // Each step runs right after a dd of the same size, so that both meet the disk in the same mood.
  const measure = async <T>(bytes: number, fn: () => Promise<T>): Promise<[T, Step]> => {
    const dd = await ddWriteSpeed(work, bytes);
    await resetPeak(pid);
    const [result, s] = await seconds(fn);
    return [result, { seconds: s, dd, rss: await peakRssMb(pid) }];
  };

  const exports: Step[] = [];
  const imports: Step[] = [];
  const sends: Step[] = [];
  for (let round = 0; round < RUNS; round++) {
    exports.push((await measure(bytes, () => exportTo(id, 'none', archive)))[1]);
    // Without the disk: what cryo's side of an export can do (curl throws the bytes away).
    sends.push((await measure(bytes, () => exportTo(id, 'none', '/dev/null')))[1]);
    await api('DELETE', `/v1/checkpoints/${id}`);
    const [imported, step] = await measure(bytes, () => importFrom(archive));
    imports.push(step);
    id = String(imported.id);
  }

  console.log(
    `\ncheckpoint: ${(sizeBytes / MB).toFixed(0)} MB on disk; archive ${(bytes / MB).toFixed(0)} MB; dd: if=/dev/zero bs=1M conv=fsync of the same size, right before each step`,
  );
  const ddAll = [first, ...exports, ...sends, ...imports].map((s) => s.dd);
  console.log(`every dd of the run: median ${range(ddAll)} MB/s`);
  console.log(
    `\n| step (median of ${RUNS}) | time | MB/s (range) | dd right before it, MB/s | of that dd | of the run's median dd | cryo peak RSS |`,
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  console.log(
    `| ${stepRow('export, first (hashes every entry for cryo.json first; one run; dd after it)', [first], bytes, ddAll)} |`,
  );
  console.log(`| ${stepRow('export (curl -o file, fsync)', exports, bytes, ddAll)} |`);
  console.log(`| ${stepRow('import (verifies sha256, fsync, rename)', imports, bytes, ddAll)} |`);
  console.log(`| ${stepRow('export to /dev/null (no disk: cryo and curl only)', sends, bytes, ddAll)} |`);

  console.log('\n| compression | archive | ratio | time | throughput (uncompressed) |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const compress of ['gzip', 'zstd']) {
    const file = path.join(work, `export.${compress}`);
    const [size, s] = await seconds(() => exportTo(id, compress, file));
    console.log(
      `| ${compress} | ${(size / MB).toFixed(0)} MB | ${(size / bytes).toFixed(3)} | ${s.toFixed(2)} s | ${(bytes / MB / s).toFixed(0)} MB/s |`,
    );
    await rm(file, { force: true });
  }
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  await cryo.stop();
}
