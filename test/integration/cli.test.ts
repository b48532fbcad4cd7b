import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Checkpoint, CheckpointList, RestoreResult } from '../../src/domain/checkpoint.js';
import type { Preflight } from '../../src/domain/process.js';
import type { Schedule, ScheduleRun } from '../../src/domain/schedule.js';
import { counterAtLeast, inspect, readCounter } from '../../harness/containers.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { TestCryo } from '../../harness/cryo.js';
import { NODE_IMAGE, repoRoot } from '../../harness/prerequisites.js';

const main = path.join(repoRoot, 'dist/src/main.js');
const test = cryoSuite<{ work: string }>({
  cleanEachTest: true,
  extra: {
    make: async () => ({ work: await mkdtemp(path.join(os.tmpdir(), 'cryo-test-cli-')) }),
    cleanUp: async ({ work }) => {
      if (work) await rm(work, { recursive: true, force: true });
    },
  },
});

test('cryo checkpoint, ls and restore: the counter goes on from where it was', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('cli');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 5);

  const preflight = await cryo.cliJson<Preflight>(['preflight', name]);
  t.true(preflight.checkpointable, JSON.stringify(preflight.problems));

  const checkpoint = await cryo.cliJson<Checkpoint>(['checkpoint', name, '--name', 'first']);
  t.is(checkpoint.name, 'first');
  t.false((await inspect(name)).State.Running, 'stop mode by default, as docker checkpoint create');
  const listed = await cryo.cliJson<CheckpointList>(['ls', '--container', name, '--format', 'json']);
  t.deepEqual(
    listed.checkpoints.map((c) => c.id),
    [checkpoint.id],
  );
  // By default, a table, as docker and podman list things.
  const table = await cryo.cli(['ls', '--container', name]);
  t.is(table.exitCode, 0, table.stderr);
  const [header, ...rows] = table.stdout.trimEnd().split('\n');
  t.regex(header!, /^CHECKPOINT ID +NAME +SOURCE +CREATED +SIZE +MODE$/);
  t.is(rows.length, 1);
  t.regex(
    rows[0]!,
    new RegExp(`^${checkpoint.id} +first +${name} +\\d+ seconds? ago +[\\d.]+[kMG]?B +stopped$`),
  );

  const restored = await cryo.cliJson<RestoreResult>(['restore', checkpoint.id]);
  t.is(restored.container!.name, name);
  const after = await readCounter(name);
  t.is(after.bootId, before.bootId, 'the same process, restored');
  t.true(after.count >= before.count);

  const removed = await cryo.cli(['rm', checkpoint.id]);
  t.is(removed.exitCode, 0, removed.stderr);
  t.is((await cryo.api('GET', `/v1/checkpoints/${checkpoint.id}`)).status, 404);
});

test('cryo export -o, rm, import and restore --name: a copy carries the process; the archive file is replaced only whole', async (t) => {
  const { cryo, containers, work } = t.context;
  const name = containers.uniqueName('cli-export');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 5);
  const checkpoint = await cryo.cliJson<Checkpoint>(['checkpoint', name, '--leave-running']);
  t.true((await inspect(name)).State.Running);

  const file = path.join(work, 'counter.tar.zst');
  const exported = await cryo.cli(['export', checkpoint.id, '-o', file, '--compress', 'zstd']);
  t.is(exported.exitCode, 0, exported.stderr);
  await t.notThrowsAsync(access(file));
  // Again, uncompressed, over the same file: it is replaced whole, and no partial file stays behind.
  const again = await cryo.cli(['export', checkpoint.id, '-o', file]);
  t.is(again.exitCode, 0, again.stderr);
  t.deepEqual(await readdir(work), [path.basename(file)]);
  t.is((await readFile(file)).subarray(0, 4).toString('hex') === '28b52ffd', false, 'no longer zstd');

  t.is((await cryo.cli(['rm', checkpoint.id])).exitCode, 0);
  const imported = await cryo.cliJson<Checkpoint>(['import', file]);
  t.is(imported.name, checkpoint.name);

  // Host to host through a pipe, as with ssh: export to stdout, import from stdin.
  const other = await TestCryo.start();
  t.teardown(() => other.stop());
  const piped = await execa('node', [main, 'export', imported.id, '-o', '-', '--compress', 'gzip'], {
    env: { CRYO_URL: cryo.url, CRYO_TOKEN: cryo.token },
  }).pipe('node', [main, 'import', '-'], { env: { CRYO_URL: other.url, CRYO_TOKEN: other.token } });
  t.is((JSON.parse(piped.stdout) as Checkpoint).name, checkpoint.name);
  // A reader that stops early ends the export quietly, as SIGPIPE would.
  const early = await execa(
    'sh',
    ['-c', `node ${main} export ${imported.id} -o - | head -c 100 > /dev/null`],
    {
      env: { CRYO_URL: cryo.url, CRYO_TOKEN: cryo.token, PATH: process.env.PATH ?? '' },
      reject: false,
    },
  );
  t.is(early.exitCode, 0);
  t.is(early.stderr, '', 'no stack trace on a closed pipe');

  const copy = containers.uniqueName('cli-copy');
  const restored = await cryo.cliJson<RestoreResult>(['restore', imported.id, '--name', copy]);
  t.is(restored.container!.name, copy);
  const cloned = await readCounter(copy);
  t.is(cloned.bootId, before.bootId);
  t.true(cloned.count >= before.count);
  await cryo.cli(['rm', imported.id]);
});

test('cryo checkpoint --export and restore --import, as podman: one step each way, and a failed restore keeps the import', async (t) => {
  const { cryo, containers, work } = t.context;
  const name = containers.uniqueName('cli-podman');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 5);
  const file = path.join(work, 'podman-style.tar.gz');
  const checkpoint = await cryo.cliJson<Checkpoint>([
    'checkpoint',
    name,
    '--leave-running',
    '--export',
    file,
    '--compress',
    'gzip',
  ]);
  t.is((await readFile(file)).subarray(0, 2).toString('hex'), '1f8b', 'a gzip archive');
  const named = async () =>
    (await cryo.api<CheckpointList>('GET', '/v1/checkpoints')).body.checkpoints.filter(
      (c) => c.name === checkpoint.name,
    );

  // On the host that still has the checkpoint, the import is refused before anything is restored.
  const copy = containers.uniqueName('cli-podman-copy');
  const twice = await cryo.cli(['restore', '--import', file, '--name', copy]);
  t.is(twice.exitCode, 1);
  t.regex(twice.stderr, /^cryo: CHECKPOINT_NAME_IN_USE: /);
  t.is((await named()).length, 1);

  t.is((await cryo.cli(['rm', checkpoint.id])).exitCode, 0);
  const restored = await cryo.cliJson<RestoreResult>(['restore', '--import', file, '--name', copy]);
  t.is(restored.container!.name, copy);
  const cloned = await readCounter(copy);
  t.is(cloned.bootId, before.bootId, 'the same process, from the archive');
  t.true(cloned.count >= before.count);
  const [imported] = await named();
  t.truthy(imported, 'the imported checkpoint stays, to be restored again');

  // A restore that fails after the upload keeps the imported checkpoint and says how to go on.
  t.is((await cryo.cli(['rm', imported!.id])).exitCode, 0);
  const taken = await cryo.cli(['restore', '--import', file, '--name', copy]);
  t.is(taken.exitCode, 1);
  const [kept] = await named();
  t.truthy(kept);
  t.regex(
    taken.stderr,
    new RegExp(`the archive is imported as checkpoint ${kept!.id}: cryo restore ${kept!.id}`),
  );
  t.is((await cryo.cli(['rm', kept!.id])).exitCode, 0);

  for (const args of [['restore'], ['restore', kept!.id, '--import', file]]) {
    const bad = await cryo.cli(args);
    t.is(bad.exitCode, 1, args.join(' '));
    t.regex(bad.stderr, /^cryo: VALIDATION_FAILED: /);
  }
  t.deepEqual(await named(), []);
});

test('cryo reports the API error with its code and hint, exits 1, and refuses bad flags before any request', async (t) => {
  const { cryo } = t.context;
  const missing = await cryo.cli(['checkpoint', 'cryo-test-no-such-container']);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /^cryo: CONTAINER_NOT_FOUND: .*\nhint: .+/);
  t.is(missing.stdout, '');

  const badPorts = await cryo.cli(['restore', '000000000000000000000000', '--ports', 'everywhere']);
  t.not(badPorts.exitCode, 0);
  t.regex(badPorts.stderr, /--ports.*everywhere|Allowed choices/s);

  const badPid = await cryo.cli(['inspect', '0']);
  t.not(badPid.exitCode, 0);
  t.regex(badPid.stderr, /positive integer/);

  const wrongToken = await cryo.cli(['ls', '--token', 'not-the-token-at-all']);
  t.is(wrongToken.exitCode, 1);
  t.regex(wrongToken.stderr, /UNAUTHORIZED/);

  const nobody = await cryo.cli(['ls', '--url', 'http://127.0.0.1:9']);
  t.is(nobody.exitCode, 1);
  t.regex(nobody.stderr, /CRYO_UNREACHABLE[\s\S]*hint: /);
});

test('cryo schedule create, run, runs, ls and rm --delete-checkpoints: snapshots kept under the retention, then gone', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('cli-schedule');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  await counterAtLeast(name, 3);
  const created = await cryo.cliJson<Schedule>([
    'schedule',
    'create',
    name,
    '--cron',
    '@monthly',
    '--keep-last',
    '2',
  ]);
  t.like(created, { cron: '@monthly', leaveRunning: true, enabled: true, retain: { last: 2 } });

  const runs: ScheduleRun[] = [];
  for (let i = 0; i < 3; i++) runs.push(await cryo.cliJson<ScheduleRun>(['schedule', 'run', created.id]));
  t.deepEqual(
    runs.map((r) => r.outcome),
    ['succeeded', 'succeeded', 'succeeded'],
  );
  t.true((await inspect(name)).State.Running, 'a scheduled snapshot leaves the container running');
  const kept = await cryo.cliJson<CheckpointList>(['ls', '--container', name, '--format', 'json']);
  t.deepEqual(
    kept.checkpoints.map((c) => c.id).sort(),
    runs
      .slice(1)
      .map((r) => r.checkpointId!)
      .sort(),
    'the retention keeps the newest 2',
  );
  const listedRuns = await cryo.cliJson<{ runs: ScheduleRun[] }>([
    'schedule',
    'runs',
    created.id,
    '--format',
    'json',
  ]);
  t.is(listedRuns.runs.length, 3);
  const runRows = (await cryo.cli(['schedule', 'runs', created.id])).stdout.trimEnd().split('\n');
  t.is(runRows.length, 4, 'a header and three runs');
  for (const [i, run] of runs.entries()) {
    t.true(
      runRows.some((row) => new RegExp(`manual +succeeded +${run.checkpointId!} +[\\d.]+s`).test(row)),
      `run ${i}`,
    );
  }
  const listed = await cryo.cliJson<{ schedules: Schedule[] }>(['schedule', 'ls', '--format', 'json']);
  t.true(listed.schedules.some((s) => s.id === created.id));

  const removed = await cryo.cli(['schedule', 'rm', created.id, '--delete-checkpoints']);
  t.is(removed.exitCode, 0, removed.stderr);
  t.false(
    (await cryo.cliJson<{ schedules: Schedule[] }>(['schedule', 'ls', '--format', 'json'])).schedules.some(
      (s) => s.id === created.id,
    ),
  );
  t.deepEqual(
    (await cryo.cliJson<CheckpointList>(['ls', '--container', name, '--format', 'json'])).checkpoints,
    [],
  );

  const bad = await cryo.cli(['schedule', 'create', name, '--cron', 'every tuesday']);
  t.is(bad.exitCode, 1);
  t.regex(bad.stderr, /^cryo: [A-Z_]+: .*cron/i);
});
