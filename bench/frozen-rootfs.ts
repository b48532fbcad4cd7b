/**
 * What reading the root filesystem while the workload is still frozen (`consistentRootfs`, the default of a
 * leave-running checkpoint) adds to the time the workload stands still, against reading it after the thaw, on a
 * workload with BENCH_MIB of memory (default 512) and BENCH_CHANGED_MIB of changed files in its root filesystem
 * (default 50). The raw floor, measured in the same run: `runc checkpoint --leave-running` of the same container.
 *
 * BENCH_RUNS (default 3; medians).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { callApi } from '../harness/cryo-process.js';
import { engineEnv, engineName } from '../harness/engine.js';
import { requirePrerequisites } from '../harness/prerequisites.js';
import { median, runMemoryContainer, timed } from './raw-criu.js';
import { fmtMs, ratio } from './format.js';

const MIB = Number(process.env.BENCH_MIB ?? 512);
const CHANGED_MIB = Number(process.env.BENCH_CHANGED_MIB ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Stats {
  dumpMs: number;
  pausedMs?: number;
  frozenMs?: number;
}

async function main(): Promise<void> {
  await requirePrerequisites();
  const dataDir = await mkdtemp(path.join('/var/lib', 'cryo-bench-'));
  const server = await startServer(
    loadConfig(engineEnv(), { listen: '127.0.0.1:0', dataDir, logLevel: 'warn' }),
  );
  const name = `cryo-bench-frozen-${process.pid}`;
  const scratch = await mkdtemp(path.join('/var/lib', 'cryo-bench-raw-'));
  try {
    await runMemoryContainer(name, MIB);
    // 1 MiB files of random bytes, in the container's own upper layer.
    const write = `const fs=require('fs'),c=require('crypto');fs.mkdirSync('/changed',{recursive:true});for(let i=0;i<${CHANGED_MIB};i++)fs.writeFileSync('/changed/f'+i,c.randomBytes(1<<20))`;
    await execa('docker', ['exec', name, '/usr/bin/node', '-e', write]);
    const id = (await execa('docker', ['inspect', '-f', '{{.Id}}', name])).stdout.trim();
    const root = path.join(engineEnv().CRYO_DOCKER_EXEC_ROOT ?? '/var/run/docker', 'runtime-runc', 'moby');
    const runc = engineEnv().CRYO_RUNC ?? 'runc';

    const raw: number[] = [];
    const consistent: Stats[] = [];
    const after: Stats[] = [];
    for (let run = 0; run < RUNS; run++) {
      const images = path.join(scratch, String(run));
      const [, ms] = await timed(() =>
        execa(runc, [
          '--root',
          root,
          'checkpoint',
          '--leave-running',
          '--image-path',
          images,
          '--work-path',
          images,
          id,
        ]),
      );
      raw.push(ms);
      await rm(images, { recursive: true, force: true });
      for (const [consistentRootfs, into] of [
        [true, consistent],
        [false, after],
      ] as const) {
        const cp = await callApi<{ id: string; stats: Stats }>(
          server,
          'POST',
          `/v1/containers/${name}/checkpoints`,
          { leaveRunning: true, consistentRootfs },
        );
        into.push(cp.stats);
        await callApi(server, 'DELETE', `/v1/checkpoints/${cp.id}`);
      }
    }
    const paused = (xs: Stats[]) => median(xs.map((s) => s.pausedMs ?? Number.NaN));
    const floor = median(raw);
    console.log(
      `engine ${engineName}, ${MIB} MiB of memory, ${CHANGED_MIB} MiB of changed files, ${RUNS} runs (medians)`,
    );
    console.log(`raw runc checkpoint --leave-running        ${fmtMs(floor)}`);
    console.log(
      `cryo, root filesystem read while frozen    paused ${fmtMs(paused(consistent))} (${ratio(paused(consistent), floor)} raw), dump ${fmtMs(median(consistent.map((s) => s.dumpMs)))}`,
    );
    console.log(
      `cryo, root filesystem read after the thaw  paused ${fmtMs(paused(after))} (${ratio(paused(after), floor)} raw), dump ${fmtMs(median(after.map((s) => s.dumpMs)))}`,
    );
    console.log(
      `reading ${CHANGED_MIB} MiB while frozen adds ${fmtMs(paused(consistent) - paused(after))} to the pause`,
    );
  } finally {
    await execa('docker', ['rm', '-f', name], { reject: false });
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
