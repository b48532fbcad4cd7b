/**
 * Incremental checkpoints against full ones, in the same run: a BENCH_CHAIN_MIB (default 1024) memory workload
 * rewrites 2% of its pages (random 4 KiB pages) before each of BENCH_CHAIN_LEVELS (default 24) snapshots, taken
 * incremental. Every fourth level a full checkpoint of the same state is taken too, before or after the incremental
 * one in alternating order (this VM writes fresh page-cache pages slowly). Printed: the bytes the chain stores
 * against as many full checkpoints, the end-to-end and frozen times (medians), and the restore of the top level
 * against the restore of a full checkpoint of the same state (BENCH_RUNS rounds each, alternating).
 */
import { execa } from 'execa';
import { CryoProcess } from '../harness/cryo-process.js';
import { hostPort } from '../harness/containers.js';
import { requirePrerequisites } from '../harness/prerequisites.js';
import { fmt, fmtMs, ratio } from './format.js';
import { median, runMemoryContainer, timed } from './raw-criu.js';

const MIB = Number(process.env.BENCH_CHAIN_MIB ?? 1024);
const LEVELS = Number(process.env.BENCH_CHAIN_LEVELS ?? 24);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TOUCHED = Math.round((MIB * 256) / 50);

interface Made {
  id: string;
  sizeBytes: number;
  chain?: { depth: number; ownBytes: number; pages?: { total: number; stored: number } };
  stats: { pausedMs?: number; frozenMs?: number };
}

await requirePrerequisites();
const cryo = await CryoProcess.start();
const name = `cryo-bench-chain-${process.pid}`;
const made: string[] = [];

async function touch(): Promise<void> {
  const port = await hostPort(name, 8080);
  const res = await fetch(`http://127.0.0.1:${port}/touch?pages=${TOUCHED}`, {
    method: 'POST',
    signal: AbortSignal.timeout(300_000),
  });
  if (!res.ok) throw new Error(`touch: ${res.status}`);
}

/** An incremental snapshot on `parent` (the chain's top; none: the base), or a full one. */
async function snapshot(incremental: boolean, parent?: string): Promise<[Made, number]> {
  const [result, ms] = await timed(() =>
    cryo.api<Made>('POST', `/v1/containers/${name}/checkpoints`, {
      leaveRunning: true,
      incremental,
      ...(parent ? { parent } : {}),
    }),
  );
  made.push(result.id);
  return [result, ms];
}

async function restoreMs(id: string, round: number): Promise<number> {
  const container = `${name}-r${round}-${id.slice(-4)}`;
  const [, ms] = await timed(() =>
    cryo.api('POST', `/v1/checkpoints/${id}/restore`, { name: container, ports: 'free' }),
  );
  await execa('docker', ['rm', '-f', container], { reject: false });
  return ms;
}

try {
  // A young generation of 1 MiB: V8's scavenges would otherwise rewrite up to 32 MiB of pages per request.
  await runMemoryContainer(name, MIB, undefined, [], ['--max-semi-space-size=1']);
  const chain: Made[] = [];
  const inc: { ms: number; paused: number }[] = [];
  /** Incremental snapshots with no full one next to them: a schedule's steady state. */
  const steady: { ms: number; paused: number }[] = [];
  const full: { ms: number; paused: number; bytes: number }[] = [];
  let lastFull: Made | undefined;
  for (let level = 0; level < LEVELS; level++) {
    if (level > 0) await touch();
    const measure = level > 0 && level % 4 === 0;
    const order = (level / 4) % 2 === 0 ? ['inc', 'full'] : ['full', 'inc'];
    for (const which of measure ? order : ['inc']) {
      const [result, ms] = await snapshot(which === 'inc', which === 'inc' ? chain.at(-1)?.id : undefined);
      const paused = result.stats.pausedMs ?? result.stats.frozenMs ?? 0;
      if (which === 'inc') {
        chain.push(result);
        if (measure) inc.push({ ms, paused });
        else if (level > 1 && level % 4 !== 1) steady.push({ ms, paused });
      } else {
        full.push({ ms, paused, bytes: result.sizeBytes });
        lastFull = result;
      }
    }
    const top = chain.at(-1)!;
    console.log(
      `level ${level}: depth ${top.chain?.depth}, ${(top.sizeBytes / 2 ** 20).toFixed(1)} MiB` +
        (top.chain?.pages ? ` (${top.chain.pages.stored} of ${top.chain.pages.total} pages)` : ''),
    );
  }
  // A full checkpoint of the top level's state, for the restores.
  const [sameState] = await snapshot(false);
  lastFull = sameState;
  const stored = chain.reduce((n, c) => n + (c.chain?.ownBytes ?? c.sizeBytes), 0);
  const fullBytes = median(full.map((f) => f.bytes));
  const top = chain.at(-1)!;
  const restoreTop: number[] = [];
  const restoreFull: number[] = [];
  for (let round = 0; round < RUNS; round++) {
    for (const which of round % 2 === 0 ? ['top', 'full'] : ['full', 'top']) {
      if (which === 'top') restoreTop.push(await restoreMs(top.id, round));
      else restoreFull.push(await restoreMs(lastFull.id, round));
    }
  }
  const m = median;
  console.log(`workload: ${MIB} MiB, ${TOUCHED} random pages rewritten before each of ${LEVELS} snapshots`);
  console.log(
    `bytes stored by ${chain.length} snapshots: chain ${(stored / 2 ** 30).toFixed(2)} GiB, as full checkpoints ${((fullBytes * chain.length) / 2 ** 30).toFixed(2)} GiB (${ratio(stored, fullBytes * chain.length)})`,
  );
  console.log(
    `snapshot end to end: incremental ${fmt(m(inc.map((x) => x.ms)))}, full ${fmt(m(full.map((x) => x.ms)))}: ${ratio(m(inc.map((x) => x.ms)), m(full.map((x) => x.ms)))}`,
  );
  console.log(
    `incremental alone (no full snapshot beside it, as a schedule takes them): ${fmt(m(steady.map((x) => x.ms)))} end to end, ${fmtMs(m(steady.map((x) => x.paused)))} frozen`,
  );
  console.log(
    `frozen: incremental ${fmtMs(m(inc.map((x) => x.paused)))}, full ${fmtMs(m(full.map((x) => x.paused)))}: ${ratio(m(inc.map((x) => x.paused)), m(full.map((x) => x.paused)))}`,
  );
  console.log(
    `restore (new container) of level ${top.chain?.depth}: ${fmt(m(restoreTop))}, of a full checkpoint of the same state ${fmt(m(restoreFull))}: ${ratio(m(restoreTop), m(restoreFull))}`,
  );
  console.log(
    `runs: incremental ${inc.map((x) => fmt(x.ms)).join(' ')} | full ${full.map((x) => fmt(x.ms)).join(' ')} | restore top ${restoreTop.map(fmt).join(' ')} | restore full ${restoreFull.map(fmt).join(' ')}`,
  );
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
  for (const id of made.reverse()) await cryo.api('DELETE', `/v1/checkpoints/${id}`).catch(() => undefined);
  await cryo.stop();
}
