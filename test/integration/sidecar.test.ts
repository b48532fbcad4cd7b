import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import type { OperatorsView } from '../../src/domain/sidecar/metadata.js';
import { sleep } from '../../harness/containers.js';
import { cryoSuite, type CryoSuiteContext } from '../../harness/cryo-suite.js';
import { readTar } from '../../harness/tar.js';
import {
  committedOutput,
  operators,
  rng,
  runToEnd,
  wordcountJob,
  type Job,
} from '../../harness/wordcount.js';
import { BUSYBOX_IMAGE, NODE_IMAGE, repoRoot } from '../../harness/prerequisites.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

type Context = CryoSuiteContext & { dirs: string[] };
const test = cryoSuite<{ dirs: string[] }>({
  serial: true,
  cleanEachTest: true,
  extra: { make: async () => ({ dirs: [] }) },
});

test.afterEach.always(async (t) => {
  // CRYO_KEEP_DIRS=1 keeps a failed run's input and committed output for a look.
  for (const d of t.context.dirs.splice(0))
    if (!process.env.CRYO_KEEP_DIRS) await rm(d, { recursive: true, force: true });
});

const KILL_POINTS = 20;

async function startWordcount(
  t: ExecutionContext<Context>,
  job: Job,
  env: Record<string, string>,
): Promise<void> {
  await t.context.containers.run({
    image: NODE_IMAGE,
    name: job.name,
    cmd: ['/usr/bin/node', '/app/wordcount.mjs'],
    env,
    volumes: [
      // The SDK as users ship it: one bundled file, no node_modules.
      `${repoRoot}dist/cryo-sidecar.mjs:/opt/cryo/cryo-sidecar.mjs:ro`,
      `${job.input}:/data/in:ro`,
      `${job.output}:/data/out`,
    ],
  });
  // The job is up once its sidecar answers.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await t.context.cryo.api('GET', `/v1/containers/${job.name}/operators`);
    if (res.status === 200) return;
    if (Date.now() > deadline) throw new Error(`the job never registered: ${JSON.stringify(res.body)}`);
    await sleep(100);
  }
}

/** Runs the job to its end, then checks its committed output line by line: no duplicate, no loss, nothing else. */
async function expectExactlyOnce(t: ExecutionContext<Context>, ref: string, job: Job): Promise<void> {
  await runToEnd(t.context.cryo, ref);
  const out = await committedOutput(job.output, job.expected);
  t.deepEqual(out.duplicates, [], 'no line is committed twice');
  t.deepEqual(out.missing.slice(0, 10), [], 'no line is lost');
  t.is(out.extra, 0, 'no line that a batch run would not write');
  t.is(
    out.lines,
    [...job.expected.values()].reduce((a, b) => a + b, 0),
  );
}

async function checkpoint(
  t: ExecutionContext<Context>,
  ref: string,
  application: true | 'only',
): Promise<Checkpoint> {
  const res = await t.context.cryo.api<Checkpoint>('POST', `/v1/containers/${ref}/checkpoints`, {
    leaveRunning: true,
    application,
  });
  if (res.status !== 201) throw new Error(`checkpoint: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function restore(
  t: ExecutionContext<Context>,
  id: string,
  body: Record<string, unknown>,
): Promise<RestoreResult> {
  const res = await t.context.cryo.api<RestoreResult>('POST', `/v1/checkpoints/${id}/restore`, body);
  if (res.status !== 201) throw new Error(`restore: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

for (const mode of ['process', 'application', 'auto'] as const) {
  test(`exactly-once over ${KILL_POINTS} random kills, restore mode ${mode}`, async (t) => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    t.log(`seed ${seed}`);
    const random = rng(seed);
    const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 5000, seed);
    await startWordcount(t, job, { WC_RATE: '400' });
    const used = new Set<string>();
    for (let k = 0; k < KILL_POINTS; k++) {
      await sleep(150 + random() * 450);
      // auto: every other checkpoint has no CRIU image, so auto restores the operator state there.
      const application = mode === 'application' || (mode === 'auto' && k % 2 === 1) ? 'only' : true;
      const ck = await checkpoint(t, job.name, application);
      t.is(ck.processImage === false, application === 'only');
      t.truthy(ck.application && ck.application.subtasks === 7 && ck.application.stateBytes > 0);
      await sleep(random() * 400);
      await execa('docker', ['kill', job.name]);
      const restored = await restore(t, ck.id, mode === 'process' ? {} : { mode });
      t.is(restored.mode, application === 'only' ? 'application' : 'process');
      used.add(restored.mode!);
      if (restored.mode === 'application')
        t.is(restored.application?.checkpointId, ck.application!.checkpointId);
    }
    t.deepEqual([...used].sort(), mode === 'auto' ? ['application', 'process'] : [mode]);
    await expectExactlyOnce(t, job.name, job);
  });
}

test('rescale 2 -> 3 -> 1 through application restores into new containers', async (t) => {
  const { cryo, containers } = t.context;
  const seed = Math.floor(Math.random() * 2 ** 31);
  t.log(`seed ${seed}`);
  const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 3000, seed);
  await startWordcount(t, job, { WC_RATE: '1000' });
  let ref = job.name;
  for (const parallelism of [3, 1]) {
    await sleep(800);
    const ck = await checkpoint(t, ref, 'only');
    await execa('docker', ['kill', ref]);
    const name = containers.uniqueName(`wc-p${parallelism}`);
    const restored = await restore(t, ck.id, {
      mode: 'application',
      name,
      env: [`WC_PARALLELISM=${parallelism}`],
    });
    t.is(restored.container?.name, name);
    ref = name;
    const view = await operators(cryo, ref);
    const count = view.operators.find((o) => o.id === 'count')!;
    t.is(count.parallelism, parallelism);
    // The subtasks' key-group ranges are disjoint and cover every key group.
    const ranges = count.subtasks.map((s) => s.keyGroupRange!);
    t.is(ranges[0]!.start, 0);
    t.is(ranges.at(-1)!.end, view.maxParallelism - 1);
    for (let i = 1; i < ranges.length; i++) t.is(ranges[i]!.start, ranges[i - 1]!.end + 1);
    t.true(view.lastCheckpointId >= ck.application!.checkpointId);
  }
  await expectExactlyOnce(t, ref, job);
});

test('operator checkpoints refuse clearly: no sidecar, no operator state, no CRIU image, env without a name', async (t) => {
  const { cryo, containers } = t.context;
  const plain = await containers.run({ image: BUSYBOX_IMAGE, cmd: ['sleep', '600'] });
  const none = await cryo.api<ErrorBody>('POST', `/v1/containers/${plain}/checkpoints`, {
    leaveRunning: true,
    application: 'only',
  });
  t.is(none.status, 409);
  t.is(none.body.code, ErrorCode.SIDECAR_UNAVAILABLE);
  t.truthy(none.body.hint);
  const view = await cryo.api<ErrorBody>('GET', `/v1/containers/${plain}/operators`);
  t.is(view.body.code, ErrorCode.SIDECAR_UNAVAILABLE);
  // The container was never frozen or stopped, and no checkpoint was kept.
  t.is((await execa('docker', ['inspect', '-f', '{{.State.Status}}', plain])).stdout, 'running');
  t.is(
    (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${plain}`)).body
      .checkpoints.length,
    0,
  );

  const processOnly = await cryo.api<Checkpoint>('POST', `/v1/containers/${plain}/checkpoints`, {
    leaveRunning: true,
  });
  t.is(processOnly.status, 201);
  const noState = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${processOnly.body.id}/restore`, {
    mode: 'application',
  });
  t.is(noState.status, 409);
  t.is(noState.body.code, ErrorCode.NO_APPLICATION_STATE);

  const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 200, 7);
  await startWordcount(t, job, {});
  const only = await checkpoint(t, job.name, 'only');
  await execa('docker', ['kill', job.name]);
  const noImage = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${only.id}/restore`, {
    mode: 'process',
  });
  t.is(noImage.status, 409);
  t.is(noImage.body.code, ErrorCode.NO_PROCESS_IMAGE);
  const envInPlace = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${only.id}/restore`, {
    mode: 'application',
    env: ['WC_PARALLELISM=3'],
  });
  t.is(envInPlace.status, 400);
  t.is(envInPlace.body.code, ErrorCode.VALIDATION_FAILED);
  const badApplication = await cryo.api<ErrorBody>('POST', `/v1/containers/${job.name}/checkpoints`, {
    application: 'sometimes',
  });
  t.is(badApplication.status, 400);
});

test('scheduled application-only snapshots commit the output, keep the retention, and restore', async (t) => {
  const { cryo } = t.context;
  const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 3000, 11);
  await startWordcount(t, job, { WC_RATE: '500' });
  const created = await cryo.api<{ id: string; application: unknown }>('POST', '/v1/schedules', {
    container: job.name,
    cron: '* * * * * *',
    application: 'only',
    retain: { last: 2 },
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(created.body.application, 'only');
  t.teardown(() =>
    cryo.api('DELETE', `/v1/schedules/${created.body.id}?deleteCheckpoints=true`).then(() => undefined),
  );
  const deadline = Date.now() + 30_000;
  let runs: { outcome: string; checkpointId?: string }[] = [];
  while (runs.filter((r) => r.outcome === 'succeeded').length < 4) {
    if (Date.now() > deadline) throw new Error(`runs: ${JSON.stringify(runs)}`);
    await sleep(250);
    runs = (await cryo.api<{ runs: typeof runs }>('GET', `/v1/schedules/${created.body.id}/runs`)).body.runs;
  }
  // Output is committed by the scheduled checkpoints alone, while the job runs.
  t.true((await readdir(job.output)).some((f) => f.startsWith('part-')));
  const kept = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${job.name}`))
    .body.checkpoints;
  t.true(kept.length <= 3, `retention keeps the newest 2 (and one in flight): ${kept.length}`);
  t.true(kept.every((c) => c.processImage === false && c.application?.job === 'wordcount'));
  await cryo.api('PATCH', `/v1/schedules/${created.body.id}`, { enabled: false });
  const latest = kept.at(-1)!;
  await execa('docker', ['kill', job.name]);
  const restored = await restore(t, latest.id, {});
  t.is(restored.mode, 'application');
  await expectExactlyOnce(t, job.name, job);
});

test('an application-only checkpoint travels as an archive: export, delete, import, restore into a new container', async (t) => {
  const { cryo, containers } = t.context;
  const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 2000, 23);
  await startWordcount(t, job, { WC_RATE: '1000' });
  await sleep(700);
  const ck = await checkpoint(t, job.name, 'only');
  const archive = await cryo.download(ck.id);
  const items = await readTar(archive);
  t.is(items[0]?.header.name, 'cryo.json');
  const manifest = JSON.parse(items[0]!.body.toString('utf8')) as { entries: { name: string }[] };
  const chk = `operators/chk-${ck.application!.checkpointId}`;
  t.true(manifest.entries.some((e) => e.name === `${chk}/_metadata`));
  t.false(
    manifest.entries.some((e) => e.name.startsWith('checkpoint/')),
    'no CRIU image',
  );
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${ck.id}`)).status, 204);
  await execa('docker', ['rm', '-f', job.name]);
  const imported = await cryo.upload<Checkpoint>(archive);
  t.is(imported.status, 201, JSON.stringify(imported.body));
  t.is(imported.body.processImage, false);
  t.deepEqual(imported.body.application, ck.application);
  const name = containers.uniqueName('wc-imported');
  const restored = await restore(t, imported.body.id, { name });
  t.is(restored.mode, 'application');
  await expectExactlyOnce(t, name, job);
});

test('unchanged keyed state is shared between checkpoints through hard links in operators/shared/, and outlives the checkpoint that wrote it', async (t) => {
  const { cryo } = t.context;
  // Slow enough that the two back-to-back checkpoints see (almost) no new input.
  const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 60, 31);
  await startWordcount(t, job, { WC_RATE: '5' });
  await sleep(1500);
  const a = await checkpoint(t, job.name, 'only');
  const b = await checkpoint(t, job.name, 'only');
  const sharedOf = async (id: string) => {
    const dir = path.join(cryo.dataDir, 'checkpoints', id, 'operators', 'shared');
    return Promise.all((await readdir(dir)).map(async (n) => ({ n, st: await stat(path.join(dir, n)) })));
  };
  const [inA, inB] = [await sharedOf(a.id), await sharedOf(b.id)];
  const inodesA = new Set(inA.map((f) => f.st.ino));
  const linked = inB.filter((f) => inodesA.has(f.st.ino));
  t.true(inB.length > 0);
  t.true(linked.length > 0, 'the second checkpoint reuses blocks of the first');
  t.true(
    linked.every((f) => f.st.nlink === 2),
    'one file, two links',
  );
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${a.id}`)).status, 204);
  const after = await sharedOf(b.id);
  t.is(after.length, inB.length, 'deleting the first checkpoint keeps what the second references');
  t.true(after.every((f) => f.st.nlink === 1));
  // With every checkpoint that held them deleted, the next one asks the job for everything, and succeeds.
  const c = await checkpoint(t, job.name, 'only');
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${c.id}`)).status, 204);
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${b.id}`)).status, 204);
  const d = await checkpoint(t, job.name, 'only');
  t.true(
    (await sharedOf(d.id)).every((f) => f.st.nlink === 1),
    'nothing left to link',
  );
  await execa('docker', ['kill', job.name]);
  const restored = await restore(t, d.id, {});
  t.is(restored.mode, 'application');
  await expectExactlyOnce(t, job.name, job);
});

test('operator checkpoint ids go on increasing across a restart of cryo', async (t) => {
  const { cryo } = t.context;
  const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 200, 41);
  await startWordcount(t, job, { WC_RATE: '50' });
  const first = await checkpoint(t, job.name, 'only');
  await cryo.restart();
  // A fresh job too (not restored): it has seen no id, so only cryo's own record keeps ids increasing.
  await execa('docker', ['restart', '-t', '1', job.name]);
  for (let i = 0; (await cryo.api('GET', `/v1/containers/${job.name}/operators`)).status !== 200; i++) {
    if (i > 150) throw new Error('the restarted job never registered');
    await sleep(100);
  }
  t.is((await operators(cryo, job.name)).lastCheckpointId, 0);
  const second = await checkpoint(t, job.name, 'only');
  t.true(second.application!.checkpointId > first.application!.checkpointId);
  t.is((await operators(cryo, job.name)).lastCheckpointId, second.application!.checkpointId);
  // The command line shows the same view.
  const cli = await cryo.cli(['operators', job.name]);
  t.is(cli.exitCode, 0, cli.stderr);
  const view = JSON.parse(cli.stdout) as OperatorsView;
  t.is(view.lastCheckpointId, second.application!.checkpointId);
  t.is(view.lastCompleted?.checkpoint, second.id);
});

test('application: true in stop mode: the container exits, and after the CRIU restore the job commits the cut and runs to the end', async (t) => {
  const { cryo } = t.context;
  const job = await wordcountJob(t.context.containers.uniqueName('wc'), t.context.dirs, 600, 53);
  await startWordcount(t, job, { WC_RATE: '300' });
  await sleep(800);
  const res = await cryo.api<Checkpoint>('POST', `/v1/containers/${job.name}/checkpoints`, {
    application: true,
  });
  t.is(res.status, 201, JSON.stringify(res.body));
  t.is(res.body.processImage, undefined, 'a CRIU image and the operator state');
  t.is((await execa('docker', ['inspect', '-f', '{{.State.Status}}', job.name])).stdout, 'exited');
  const restored = await restore(t, res.body.id, {});
  t.is(restored.mode, 'process');
  // cryo sent the restored job the `complete` its image had not seen: the cut's epoch is committed.
  const deadline = Date.now() + 10_000;
  while ((await operators(cryo, job.name)).committedCheckpointId < res.body.application!.checkpointId) {
    if (Date.now() > deadline) throw new Error('the restored job never committed the cut');
    await sleep(100);
  }
  await expectExactlyOnce(t, job.name, job);
});
