import { execa } from 'execa';
import { hostPort } from '../../harness/containers.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { TestCryo } from '../../harness/cryo.js';
import { NODE_IMAGE } from '../../harness/prerequisites.js';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

// Incremental checkpoints: a chain of snapshots of a workload that rewrites random pages between them, each level
// holding only the pages that changed, restored at every level with that level's memory, bit for bit.
const test = cryoSuite({ serial: true });

const MIB = 64;
/** 2% of the workload's pages, rewritten between two snapshots. */
const TOUCHED = Math.round((MIB * 256) / 50);

interface MemoryState {
  generation: number;
  sha256: string;
  pid: number;
}

/** The workload's memory; with `touch`, after rewriting that many random pages. */
async function memoryState(ref: string, touch = 0): Promise<MemoryState> {
  const port = await hostPort(ref, 8080);
  if (touch) {
    const res = await fetch(`http://127.0.0.1:${port}/touch?pages=${touch}`, {
      method: 'POST',
      signal: AbortSignal.timeout(20_000),
    });
    if (!res.ok) throw new Error(`the memory workload answered ${res.status}`);
  }
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(20_000) });
  if (!res.ok) throw new Error(`the memory workload answered ${res.status}`);
  return (await res.json()) as MemoryState;
}

async function memoryWorkload(t: {
  context: { containers: import('../../harness/containers.js').TestContainers };
}) {
  const name = t.context.containers.uniqueName('chain');
  await t.context.containers.run({
    image: NODE_IMAGE,
    cmd: ['/usr/bin/node', '/app/memory.js'],
    env: { MEMORY_MIB: String(MIB) },
    publish: 8080,
    name,
  });
  await memoryState(name).catch(async () => {
    await new Promise((r) => setTimeout(r, 2000));
    return memoryState(name);
  });
  return name;
}

/** Restores `checkpoint` into a new container and reads its memory. */
async function restoredState(
  cryo: TestCryo,
  t: Parameters<typeof memoryWorkload>[0],
  checkpoint: Checkpoint,
) {
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${checkpoint.id}/restore`, {
    name: t.context.containers.uniqueName('level'),
    ports: 'free',
  });
  if (restored.status !== 201) throw new Error(JSON.stringify(restored.body));
  const id = restored.body.container!.id;
  t.context.containers.track(id);
  const state = await memoryState(id);
  await execa('docker', ['rm', '-f', id]);
  return state;
}

test('a chain restores at every level with its memory; deleting a level in the middle or at the base breaks none', async (t) => {
  const { cryo } = t.context;
  const name = await memoryWorkload(t);
  const levels: { checkpoint: Checkpoint; state: MemoryState }[] = [];
  for (let k = 0; k < 4; k++) {
    const state = k === 0 ? await memoryState(name) : await memoryState(name, TOUCHED);
    const made = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
      leaveRunning: true,
      incremental: true,
      name: `level-${k}`,
    });
    t.is(made.status, 201, JSON.stringify(made.body));
    levels.push({ checkpoint: made.body, state });
  }
  const [base, ...increments] = levels.map((l) => l.checkpoint);
  t.is(base!.chain?.depth, 0);
  t.is(base!.chain?.parent, undefined);
  for (const [i, level] of increments.entries()) {
    t.is(level.chain?.parent, levels[i]!.checkpoint.id, 'each level builds on the one before');
    t.is(level.chain?.depth, i + 1);
    const pages = level.chain!.pages!;
    // The pages it stores: those rewritten, plus the churn of the workload's runtime (V8's heap, stacks).
    t.true(pages.stored >= TOUCHED * 0.9, `${pages.stored} pages stored, ${TOUCHED} rewritten`);
    t.true(pages.stored < pages.total * 0.2, `${pages.stored} of ${pages.total} pages stored`);
    t.true(level.sizeBytes < base!.sizeBytes / 4, `${level.sizeBytes} bytes against ${base!.sizeBytes}`);
  }

  for (const { checkpoint, state } of levels) {
    const got = await restoredState(cryo, t, checkpoint);
    t.is(got.generation, state.generation, `${checkpoint.name}: its own generation`);
    t.is(got.sha256, state.sha256, `${checkpoint.name}: its memory, bit for bit`);
  }

  // The middle level goes: the one above it takes the pages it used, and builds on the base.
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${levels[1]!.checkpoint.id}`)).status, 204);
  const rebased = (await cryo.api<Checkpoint>('GET', `/v1/checkpoints/${levels[2]!.checkpoint.id}`)).body;
  t.is(rebased.chain?.parent, base!.id);
  t.is(rebased.chain?.depth, 1);
  t.is(
    (await cryo.api<Checkpoint>('GET', `/v1/checkpoints/${levels[3]!.checkpoint.id}`)).body.chain?.depth,
    2,
  );
  for (const k of [0, 2, 3]) {
    const got = await restoredState(cryo, t, levels[k]!.checkpoint);
    t.is(got.sha256, levels[k]!.state.sha256, `level ${k} after the middle level went`);
  }

  // The base goes: the level above it becomes a full checkpoint, and the top one still restores.
  const inUse = await cryo.api<ErrorBody>('DELETE', `/v1/checkpoints/${base!.id}`);
  t.is(inUse.status, 204, JSON.stringify(inUse.body));
  const full = (await cryo.api<Checkpoint>('GET', `/v1/checkpoints/${levels[2]!.checkpoint.id}`)).body;
  t.is(full.chain?.depth, 0);
  t.is(full.chain?.parent, undefined);
  t.true(full.sizeBytes >= MIB << 20, 'it holds every page now');
  const top = await restoredState(cryo, t, levels[3]!.checkpoint);
  t.is(top.sha256, levels[3]!.state.sha256);
});

test('an export of an incremental checkpoint stands alone: another cryo imports and restores it', async (t) => {
  const { cryo } = t.context;
  const name = await memoryWorkload(t);
  await cryo.api('POST', `/v1/containers/${name}/checkpoints`, { leaveRunning: true, incremental: true });
  const state = await memoryState(name, TOUCHED);
  const top = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    incremental: true,
  });
  t.is(top.body.chain?.depth, 1);
  const res = await fetch(`${cryo.url}/v1/checkpoints/${top.body.id}/archive`, {
    headers: { authorization: `Bearer ${cryo.token}` },
  });
  t.is(res.status, 200);
  const archive = Buffer.from(await res.arrayBuffer());
  t.true(archive.length >= MIB << 20, 'its parents pages are in it');

  const other = await TestCryo.start();
  t.teardown(() => other.stop());
  const imported = await other.upload<Checkpoint>(archive);
  t.is(imported.status, 201, JSON.stringify(imported.body));
  t.is(imported.body.chain, undefined, 'a full checkpoint there');
  const got = await restoredState(other, t, imported.body);
  t.is(got.sha256, state.sha256);
  t.is(got.generation, state.generation);
});

test('a parent that cannot carry a level is refused before anything is frozen', async (t) => {
  const { cryo } = t.context;
  const name = await memoryWorkload(t);
  const other = await memoryWorkload(t);
  const theirs = await cryo.api<Checkpoint>('POST', `/v1/containers/${other}/checkpoints`, {
    leaveRunning: true,
  });
  const refused = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    parent: theirs.body.id,
  });
  t.is(refused.status, 409);
  t.is(refused.body.code, ErrorCode.CHAIN_PARENT_INVALID);
  t.is(
    (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)).body
      .checkpoints.length,
    0,
  );
  const state = await memoryState(name);
  t.is(state.generation, 0, 'the workload runs on, untouched');
});
