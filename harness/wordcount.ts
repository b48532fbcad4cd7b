import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Checkpoint } from '../src/domain/checkpoint.js';
import type { OperatorsView } from '../src/domain/sidecar/metadata.js';
import { sleep } from './containers.js';

/** The word-count stream job of the sidecar tests (fixtures/workloads/wordcount.mjs): its input, output, counts. */
export interface Job {
  name: string;
  input: string;
  output: string;
  expected: Map<string, number>;
}

/** Seeded, so that a failure can be replayed: the seed is in the test's log. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** Two input files of random words, and the counts a batch run computes from them; `dirs` gets its directories. */
export async function wordcountJob(name: string, dirs: string[], lines: number, seed: number): Promise<Job> {
  const input = await mkdtemp(path.join(os.tmpdir(), 'cryo-wc-in-'));
  const output = await mkdtemp(path.join(os.tmpdir(), 'cryo-wc-out-'));
  dirs.push(input, output);
  const random = rng(seed);
  const expected = new Map<string, number>();
  for (let f = 0; f < 2; f++) {
    const text: string[] = [];
    for (let l = 0; l < lines; l++) {
      const words = Array.from({ length: 8 }, () => `w${Math.floor(random() * 200)}`);
      for (const w of words) expected.set(w, (expected.get(w) ?? 0) + 1);
      text.push(words.join(' '));
    }
    await writeFile(path.join(input, `input-${f}.txt`), `${text.join('\n')}\n`);
  }
  return { name, input, output, expected };
}

/** Every committed "word n" line: for each word exactly 1..expected, once each. */
export async function committedOutput(dir: string, expected: Map<string, number>) {
  const seen = new Map<string, number>();
  for (const f of await readdir(dir)) {
    if (!f.startsWith('part-')) continue;
    for (const line of (await readFile(path.join(dir, f), 'utf8')).split('\n')) {
      if (line !== '') seen.set(line, (seen.get(line) ?? 0) + 1);
    }
  }
  const duplicates = [...seen].filter(([, n]) => n > 1).map(([l]) => l);
  const missing: string[] = [];
  let wanted = 0;
  for (const [w, n] of expected) {
    for (let i = 1; i <= n; i++) {
      wanted++;
      if (!seen.has(`${w} ${i}`)) missing.push(`${w} ${i}`);
    }
  }
  const extra = seen.size - (wanted - missing.length);
  if (missing.length > 0 || duplicates.length > 0) {
    const files = (await readdir(dir)).sort();
    const words = new Map<string, string[]>();
    for (const m of missing)
      words.set(m.split(' ')[0]!, [...(words.get(m.split(' ')[0]!) ?? []), m.split(' ')[1]!]);
    console.error(
      `output check: ${missing.length} missing, ${duplicates.length} duplicated; files ${files.join(' ')}; ` +
        `missing e.g. ${[...words]
          .slice(0, 5)
          .map(([w, ns]) => `${w}: ${ns.slice(0, 8).join(',')}`)
          .join('; ')}`,
    );
  }
  return { lines: seen.size, duplicates, missing, extra };
}

export async function operators(cryo: { api: ApiCall }, ref: string): Promise<OperatorsView> {
  const res = await cryo.api<OperatorsView>('GET', `/v1/containers/${ref}/operators`);
  if (res.status !== 200) throw new Error(`operators: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Runs the job to the end of its input, then takes the checkpoint that commits its last output. */
export async function runToEnd(cryo: { api: ApiCall }, ref: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await operators(cryo, ref)).finished) {
    if (Date.now() > deadline) throw new Error('the job did not finish in 2 minutes');
    await sleep(200);
  }
  const final = await cryo.api<Checkpoint>('POST', `/v1/containers/${ref}/checkpoints`, {
    application: 'only',
  });
  if (final.status !== 201)
    throw new Error(`final checkpoint: ${final.status} ${JSON.stringify(final.body)}`);
  // The sink commits after `complete`, on its own time: wait until the job says the output is visible.
  while ((await operators(cryo, ref)).committedCheckpointId < final.body.application!.checkpointId) {
    if (Date.now() > deadline) throw new Error('the final checkpoint was never committed');
    await sleep(50);
  }
}

/** What these helpers need of a cryo: its API. */
type ApiCall = <T>(method: string, url: string, body?: unknown) => Promise<{ status: number; body: T }>;
