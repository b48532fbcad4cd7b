/**
 * Export and import of a large checkpoint through a cryo service running as its own process, so that its
 * peak RSS (VmHWM, reset before each step) is cryo's alone. In the same run: the disk's sequential write speed
 * (dd with fsync), and the gzip and zstd ratio and speed on CRIU page images.
 * BENCH_ARCHIVE_MIB (default 2048) sets the memory workload's size.
 */
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { runMemoryContainer } from './raw-criu.js';
import { requirePrerequisites } from '../test/helpers/prerequisites.js';
import { CryoProcess } from './cryo-process.js';

const MIB = Number(process.env.BENCH_ARCHIVE_MIB ?? 2048);
const MB = 1e6;

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, (performance.now() - start) / 1000];
}

async function ddWriteSpeed(dir: string, mib: number): Promise<number> {
  const file = path.join(dir, 'dd.bin');
  const [, seconds] = await timed(() =>
    execa('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'conv=fsync'], { stderr: 'ignore' }),
  );
  await rm(file, { force: true });
  return (mib * 1024 * 1024) / MB / seconds;
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

try {
  const pid = cryo.pid;
  console.log(`archive bench: ${MIB} MiB memory workload, kernel ${os.release()}`);
  await runMemoryContainer(name, MIB);
  const cp = await api('POST', `/v1/containers/${name}/checkpoints`, { leaveRunning: true });
  const id = String(cp.id);
  const sizeBytes = Number(cp.sizeBytes);

  const ddMBs = await ddWriteSpeed(work, Math.min(MIB, 2048));
  const archive = path.join(work, 'export.tar');

  await resetPeak(pid);
  const [, firstExport] = await timed(() => exportTo(id, 'none', archive));
  const firstRss = await peakRssMb(pid);
  await resetPeak(pid);
  const [bytes, export2] = await timed(() => exportTo(id, 'none', archive));
  const exportRss = await peakRssMb(pid);
  await api('DELETE', `/v1/checkpoints/${id}`);
  await resetPeak(pid);
  const [imported, importSeconds] = await timed(() => importFrom(archive));
  const importRss = await peakRssMb(pid);

  const rows: string[] = [];
  const row = (label: string, seconds: number, mb: number, rss: number) =>
    rows.push(
      `| ${label} | ${seconds.toFixed(2)} s | ${(mb / seconds).toFixed(0)} MB/s | ${((mb / seconds / ddMBs) * 100).toFixed(0)}% | ${rss.toFixed(0)} MB |`,
    );
  row('export, first (hashes every entry for cryo.json)', firstExport, bytes / MB, firstRss);
  row('export, again', export2, bytes / MB, exportRss);
  row('import (verifies sha256, fsync, rename)', importSeconds, bytes / MB, importRss);

  console.log(
    `\ncheckpoint: ${(sizeBytes / MB).toFixed(0)} MB on disk; archive ${(bytes / MB).toFixed(0)} MB`,
  );
  console.log(
    `disk: dd if=/dev/zero bs=1M count=${Math.min(MIB, 2048)} conv=fsync -> ${ddMBs.toFixed(0)} MB/s\n`,
  );
  console.log('| step | time | throughput | of dd | cryo peak RSS |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);

  const importedId = String(imported.id);
  console.log('\n| compression | archive | ratio | time | throughput (uncompressed) |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const compress of ['gzip', 'zstd']) {
    const file = path.join(work, `export.${compress}`);
    const [size, seconds] = await timed(() => exportTo(importedId, compress, file));
    console.log(
      `| ${compress} | ${(size / MB).toFixed(0)} MB | ${(size / bytes).toFixed(3)} | ${seconds.toFixed(2)} s | ${(bytes / MB / seconds).toFixed(0)} MB/s |`,
    );
    await rm(file, { force: true });
  }
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  await cryo.stop();
}
