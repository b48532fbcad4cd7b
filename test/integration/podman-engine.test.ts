import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import { ErrorCode } from '../../src/domain/errors/index.js';
import type { Health } from '../../src/domain/health.js';
import type { Migration } from '../../src/domain/migration.js';
import type { PushResult } from '../../src/domain/registry.js';
import type { Schedule, ScheduleRun } from '../../src/domain/schedule.js';
import { sleep, type CounterReading } from '../../harness/containers.js';
import { TestCryo } from '../../harness/cryo.js';
import { CryoProcess } from '../../harness/cryo-process.js';
import { eventually } from '../../harness/eventually.js';
import { TestRegistry } from '../../harness/registry.js';
import {
  PODMAN,
  PodmanService,
  countsOnInPodman,
  useImageInPodman,
  podmanCounter,
  podmanCounterAtLeast,
  requirePodman,
} from '../../harness/podman.js';
import { NODE_IMAGE, repoRoot, requirePrerequisites } from '../../harness/prerequisites.js';
import { committedOutput, runToEnd, wordcountJob } from '../../harness/wordcount.js';

/** cryo with CRYO_ENGINE=podman, against `podman system service` on a socket of its own. */
interface Context {
  cryo: TestCryo;
  service: PodmanService;
  tmp: string;
  releaseImage: () => Promise<void>;
  names: string[];
}

const test = anyTest.serial as TestFn<Context>;

test.before(async (t) => {
  await requirePrerequisites();
  await requirePodman();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'cryo-podman-engine-'));
  t.context = {
    tmp,
    names: [],
    releaseImage: await useImageInPodman(NODE_IMAGE, tmp),
  } as unknown as Context;
  t.context.service = await PodmanService.start();
  t.context.cryo = await TestCryo.start({ engine: 'podman', podmanSocket: t.context.service.socket });
});

test.after.always(async (t) => {
  const { cryo, service, tmp, releaseImage, names } = t.context;
  // One at a time: `podman rm` of several names removes none when one is missing (a migrated source, say).
  for (const name of names ?? []) await execa(PODMAN, ['rm', '-f', '-t', '0', name], { reject: false });
  await cryo?.stop();
  await service?.stop();
  await releaseImage?.();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Runs the counter workload in a Podman container, removed at the end. */
async function runCounter(t: { context: Context }, label: string, args: string[] = []): Promise<string> {
  const name = `cryo-podman-${label}-${Math.random().toString(16).slice(2, 8)}`;
  t.context.names.push(name);
  await execa(PODMAN, ['run', '-d', '--name', name, ...args, NODE_IMAGE]);
  return name;
}

/** A container cryo makes, removed at the end. */
function made(t: { context: Context }, name: string): string {
  t.context.names.push(name);
  return name;
}

async function podmanState(name: string): Promise<string> {
  const { stdout } = await execa(PODMAN, ['inspect', '--format', '{{.State.Status}}', name]);
  return stdout.trim();
}

test('health reports Podman as the engine, with its version and restore path', async (t) => {
  const { body } = await t.context.cryo.api<Health>('GET', '/v1/health', undefined, null);
  const { stdout } = await execa(PODMAN, ['version', '--format', '{{.Server.Version}}']);
  t.is(body.docker.engine, 'podman');
  t.is(body.docker.version, stdout.trim());
  t.is(body.docker.restorePath, 'podman');
  t.is(body.status, 'ok', JSON.stringify(body));
});

test('a stop-mode checkpoint of a Podman container restores in place, and the counter goes on from where it was', async (t) => {
  const { cryo } = t.context;
  const name = await runCounter(t, 'in-place');
  const before = await podmanCounterAtLeast(name, 10);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, { name: 'first' });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(created.body.stats?.path, 'podman');
  t.is(await podmanState(name), 'exited', 'the dump stopped it, and Podman knows');
  // Podman's bundle keeps nothing of the dump: the images are cryo's now.
  const { stdout: staticDir } = await execa(PODMAN, ['inspect', '--format', '{{.StaticDir}}', name]);
  await t.throwsAsync(execa('ls', [path.join(staticDir.trim(), 'checkpoint')]));

  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {});
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const { stdout: id } = await execa(PODMAN, ['inspect', '--format', '{{.Id}}', name]);
  t.is(restored.body.container?.id, id.trim(), 'the same container');
  t.is(await podmanState(name), 'running');
  const { after } = await countsOnInPodman(t, name, before);
  t.is(after.pid, before.pid);

  // And again, from the same checkpoint: it stays whole in cryo's catalog.
  await execa(PODMAN, ['stop', '-t', '0', name]);
  const again = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {});
  t.is(again.status, 201, JSON.stringify(again.body));
  await countsOnInPodman(t, name, before);
});

test('a leave-running checkpoint restores into a new Podman container beside the original, both counting', async (t) => {
  const { cryo } = t.context;
  const name = await runCounter(t, 'original');
  const before = await podmanCounterAtLeast(name, 10);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(await podmanState(name), 'running');
  const clone = made(t, `${name}-clone`);
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
    name: clone,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  await countsOnInPodman(t, clone, before);
  const original = await podmanCounter(name);
  await sleep(300);
  t.true((await podmanCounter(name)).count > original.count, 'the original counts on too');

  // The name is taken now: a second restore under it is refused, and nothing else is made.
  const taken = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
    name: clone,
  });
  t.is(taken.status, 409);
  t.is(taken.body.code, ErrorCode.CONTAINER_NAME_IN_USE);
});

test("a Podman container's checkpoint goes through cryo's archive to another catalog, and through Podman's layout to `podman container restore --import`", async (t) => {
  const { cryo, tmp } = t.context;
  const name = await runCounter(t, 'archive');
  const before = await podmanCounterAtLeast(name, 10);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));

  // cryo's archive: deleted, imported back, restored into a new container.
  const archive = await cryo.download(created.body.id);
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${created.body.id}`)).status, 204);
  const imported = await cryo.upload<Checkpoint>(archive);
  t.is(imported.status, 201, JSON.stringify(imported.body));
  const fromArchive = made(t, `${name}-from-archive`);
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${imported.body.id}/restore`, {
    name: fromArchive,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  await countsOnInPodman(t, fromArchive, before);

  // Podman's own layout, restored by Podman's own command.
  const file = path.join(tmp, 'podman.tar');
  await writeFile(file, await cryo.download(imported.body.id, 'none', 'podman'));
  const byPodman = made(t, `${name}-by-podman`);
  const result = await execa(PODMAN, ['container', 'restore', '--import', file, '--name', byPodman], {
    reject: false,
    all: true,
  });
  t.is(result.exitCode, 0, result.all);
  await countsOnInPodman(t, byPodman, before);
});

test("a Podman container's checkpoint pushed to a registry, deleted here, is pulled back and restored into Podman", async (t) => {
  const { cryo } = t.context;
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const name = await runCounter(t, 'registry');
  const before = await podmanCounterAtLeast(name, 10);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  const reference = `${registry.address}/team/${name}:snapshot`;
  const pushed = await cryo.api<PushResult>('POST', `/v1/checkpoints/${created.body.id}/push`, { reference });
  t.is(pushed.status, 200, JSON.stringify(pushed.body));
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${created.body.id}`)).status, 204);

  const pulled = await cryo.api<Checkpoint>('POST', '/v1/checkpoints/pull', { reference });
  t.is(pulled.status, 201, JSON.stringify(pulled.body));
  t.is(pulled.body.container?.name, name);
  const target = made(t, `${name}-pulled`);
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${pulled.body.id}/restore`, {
    name: target,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  await countsOnInPodman(t, target, before);
});

test('scheduled snapshots of a Podman container are incremental and pruned, and the newest restores', async (t) => {
  const { cryo } = t.context;
  const name = await runCounter(t, 'scheduled');
  await podmanCounterAtLeast(name, 5);
  const schedule = await cryo.api<Schedule>('POST', '/v1/schedules', {
    container: name,
    // Never by itself within the test: each run below is asked for.
    cron: '0 0 1 1 *',
    retain: { last: 2 },
  });
  t.is(schedule.status, 201, JSON.stringify(schedule.body));
  t.teardown(() =>
    cryo.api('DELETE', `/v1/schedules/${schedule.body.id}?deleteCheckpoints=true`).then(() => undefined),
  );
  const runs: ScheduleRun[] = [];
  for (let i = 0; i < 3; i++) {
    const run = await cryo.api<ScheduleRun>('POST', `/v1/schedules/${schedule.body.id}/run`);
    t.is(run.status, 201, JSON.stringify(run.body));
    t.is(run.body.outcome, 'succeeded', JSON.stringify(run.body));
    runs.push(run.body);
    await sleep(300);
  }
  t.is(await podmanState(name), 'running', 'a schedule leaves the container running');
  t.deepEqual(runs[2]!.pruned, [runs[0]!.checkpointId], 'the oldest goes, the newest two stay');
  const newest = (await cryo.api<Checkpoint>('GET', `/v1/checkpoints/${runs[2]!.checkpointId}`)).body;
  t.is(newest.chain?.parent, runs[1]!.checkpointId, 'the newest builds on the one before');

  const before = await podmanCounter(name);
  const clone = made(t, `${name}-newest`);
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${newest.id}/restore`, {
    name: clone,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const { after } = await countsOnInPodman(t, clone, { ...before, count: 0 });
  t.true(after.count <= before.count + 1, 'it goes on from the snapshot, not from now');
  t.is(after.bootId, before.bootId);
});

test('a dump CRIU refuses fails with CRIU_FAILED and the tail of the log Podman kept, and the container runs on', async (t) => {
  const { cryo } = t.context;
  const name = await runCounter(t, 'tcp', ['-p', '127.0.0.1::8080']);
  await podmanCounterAtLeast(name, 3);
  const { stdout } = await execa(PODMAN, ['port', name, '8080']);
  const port = Number(stdout.trim().split(':').pop());
  // An established TCP connection inside the container: CRIU refuses to dump it without --tcp-established.
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  t.teardown(() => socket.destroy());
  await sleep(300);
  const listed = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body;
  const res = await cryo.api<ErrorBody & { details: { logTail: string[] } }>(
    'POST',
    `/v1/containers/${name}/checkpoints`,
    { force: true },
  );
  t.is(res.status, 500, JSON.stringify(res.body));
  t.is(res.body.code, ErrorCode.CRIU_FAILED, JSON.stringify(res.body));
  t.true(
    res.body.details.logTail.some((l) => /tcp|socket/i.test(l)),
    res.body.details.logTail.join('\n'),
  );
  t.is(await podmanState(name), 'running');
  const reading = await podmanCounter(name);
  await sleep(300);
  t.true((await podmanCounter(name)).count > reading.count, 'it counts on');
  t.deepEqual((await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body, listed);
});

test('a stream job in a Podman container: its operator state (application only) restores into a new container, and the job ends exactly once', async (t) => {
  const { cryo } = t.context;
  const dirs: string[] = [];
  t.teardown(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const name = made(t, `cryo-podman-wc-${Math.random().toString(16).slice(2, 8)}`);
  const job = await wordcountJob(name, dirs, 2000, 23);
  await execa(PODMAN, [
    'run',
    '-d',
    '--name',
    name,
    '-e',
    'WC_RATE=1000',
    // The SDK as users ship it: one bundled file.
    '-v',
    `${repoRoot}dist/cryo-sidecar.mjs:/opt/cryo/cryo-sidecar.mjs:ro`,
    '-v',
    `${job.input}:/data/in:ro`,
    '-v',
    `${job.output}:/data/out`,
    NODE_IMAGE,
    '/usr/bin/node',
    '/app/wordcount.mjs',
  ]);
  await eventually(
    async () =>
      (await cryo.api('GET', `/v1/containers/${name}/operators`)).status === 200 ? true : undefined,
    { what: `the job in ${name} to register`, timeoutMs: 15_000, intervalMs: 100 },
  );
  await sleep(700);
  const ck = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    application: 'only',
  });
  t.is(ck.status, 201, JSON.stringify(ck.body));
  t.is(ck.body.processImage, false);
  await execa(PODMAN, ['rm', '-f', '-t', '0', name]);
  const target = made(t, `${name}-restored`);
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${ck.body.id}/restore`, {
    name: target,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  t.is(restored.body.mode, 'application');
  await runToEnd(cryo, target);
  const out = await committedOutput(job.output, job.expected);
  t.deepEqual(out.duplicates, [], 'no line is committed twice');
  t.deepEqual(out.missing.slice(0, 10), [], 'no line is lost');
  t.is(out.extra, 0, 'no line that a batch run would not write');
});

/** A container's state word from Podman's API (quicker to ask than the podman command). */
function stateOnSocket(socket: string, name: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    http
      .get({ socketPath: socket, path: `/containers/${name}/json`, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(
              (JSON.parse(Buffer.concat(chunks).toString()) as { State?: { Status?: string } }).State?.Status,
            );
          } catch {
            resolve(undefined);
          }
        });
      })
      .on('error', () => resolve(undefined));
  });
}

test('a stop-mode checkpoint whose cryo is killed before publishing it: after the restart the container runs, and nothing half-written is listed', async (t) => {
  const { service } = t.context;
  const env = { CRYO_ENGINE: 'podman', CRYO_PODMAN_SOCKET: service.socket };
  const name = `cryo-podman-crash-${Math.random().toString(16).slice(2, 8)}`;
  t.context.names.push(name);
  // Its 256 MiB take long enough to fsync that a kill lands between Podman's dump and the publication.
  await execa(PODMAN, [
    'run',
    '-d',
    '--name',
    name,
    '-e',
    'MEMORY_MIB=256',
    NODE_IMAGE,
    '/usr/bin/node',
    '/app/memory.js',
  ]);
  await sleep(3000);
  let cryo = await CryoProcess.start(env);
  t.teardown(() => cryo.stop());
  let caught = false;
  for (let attempt = 0; attempt < 5 && !caught; attempt++) {
    const pending = cryo.api('POST', `/v1/containers/${name}/checkpoints`, {}).then(
      () => 'published',
      () => 'cut',
    );
    // Podman's dump has stopped it; cryo still moves, reads and fsyncs the images before publishing them.
    await eventually(
      async () => ((await stateOnSocket(service.socket, name)) === 'exited' ? true : undefined),
      {
        what: `${name} stopped by its dump`,
        timeoutMs: 60_000,
        intervalMs: 5,
      },
    );
    await cryo.crash();
    const outcome = await pending;
    cryo = await CryoProcess.start(env, { work: cryo.work, token: cryo.token });
    const listed = await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`);
    caught = listed.checkpoints.length === 0;
    t.log(
      `attempt ${attempt}: ${caught ? 'killed before the checkpoint was published' : `the checkpoint ended first (${outcome})`}`,
    );
    if (!caught) {
      for (const c of listed.checkpoints) await cryo.api('DELETE', `/v1/checkpoints/${c.id}`);
      await execa(PODMAN, ['start', name]);
    }
  }
  t.true(caught, 'cryo was killed between the dump and the publication');
  // The unpublished checkpoint is gone, and the workload runs again (afresh, as after any failed stop-mode one).
  t.is(
    await eventually(async () => ((await podmanState(name)) === 'running' ? 'running' : undefined), {
      what: `${name} running again`,
      timeoutMs: 20_000,
    }),
    'running',
  );
  await t.notThrowsAsync(execa(PODMAN, ['exec', name, '/usr/bin/node', '-e', '0']), 'its processes answer');
});

/** A second cryo on this Podman (a migration's target), and a counter to move, read at 10 or more. */
async function migrationSetup(
  t: ExecutionContext<Context>,
  label: string,
): Promise<{ b: TestCryo; name: string; before: CounterReading }> {
  const b = await TestCryo.start({ engine: 'podman', podmanSocket: t.context.service.socket });
  t.teardown(() => b.stop());
  const name = await runCounter(t, label);
  return { b, name, before: await podmanCounterAtLeast(name, 10) };
}

/** A migration from `cryo`, followed until it ends. */
async function migrationEnd(cryo: TestCryo, id: string): Promise<Migration> {
  return eventually(
    async () => {
      const { body } = await cryo.api<Migration>('GET', `/v1/migrations/${id}`);
      return body.status === 'running' ? undefined : body;
    },
    { what: `migration ${id} to end`, timeoutMs: 120_000, intervalMs: 250 },
  );
}

test('a Podman container migrates to another cryo on Podman and counts on there; it is gone from the source', async (t) => {
  const { cryo } = t.context;
  const { b, name, before } = await migrationSetup(t, 'migrated');
  // Both agents share this host's Podman: the target's container needs a name of its own.
  const moved = made(t, `${name}-moved`);
  const started = await cryo.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
    target: b.url,
    targetToken: b.token,
    name: moved,
  });
  t.is(started.status, 202, JSON.stringify(started.body));
  const done = await migrationEnd(cryo, started.body.id);
  t.is(done.status, 'succeeded', JSON.stringify(done));
  t.is(done.targetContainer?.name, moved);
  await countsOnInPodman(t, moved, before);
  const gone = await execa(PODMAN, ['container', 'exists', name], { reject: false });
  t.is(gone.exitCode, 1, 'the source container is removed');
});

test("when the target cannot restore, a Podman container's migration rolls back and it counts on at the source", async (t) => {
  const { cryo } = t.context;
  const { b, name, before } = await migrationSetup(t, 'rollback');
  // The target's name is taken there: its restore fails after the source's dump.
  const taken = made(t, `${name}-taken`);
  await execa(PODMAN, ['create', '--name', taken, NODE_IMAGE]);
  const started = await cryo.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
    target: b.url,
    targetToken: b.token,
    name: taken,
  });
  t.is(started.status, 202, JSON.stringify(started.body));
  const done = await migrationEnd(cryo, started.body.id);
  t.is(done.status, 'rolled_back', JSON.stringify(done));
  t.is(done.error?.phase, 'restore');
  t.is(done.error?.code, ErrorCode.TARGET_REFUSED);
  t.regex(done.error?.message ?? '', new RegExp(taken), JSON.stringify(done.error));
  // Stopped by its dump (Podman's API keeps no freeze), the source is restored from the checkpoint.
  t.is(await podmanState(name), 'running');
  await countsOnInPodman(t, name, before);
  t.is(await podmanState(taken), 'created', "the target's own container is untouched");
  t.deepEqual(
    (await b.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
    [],
    "the target's copy is removed",
  );
});

/** A second cryo, on this host's Docker: the other end of a migration between engines. */
async function dockerCryo(t: ExecutionContext<Context>): Promise<TestCryo> {
  const docker = await TestCryo.start();
  t.teardown(() => docker.stop());
  return docker;
}

/** Runs the counter workload in a Docker container, removed at the end. */
async function runDockerCounter(t: ExecutionContext<Context>, label: string): Promise<string> {
  const name = `cryo-podman-${label}-${Math.random().toString(16).slice(2, 8)}`;
  dockerMade(t, name);
  await execa('docker', ['run', '-d', '--name', name, NODE_IMAGE]);
  return name;
}

/** A container in Docker, removed at the end of the test. */
function dockerMade(t: ExecutionContext<Context>, name: string): string {
  t.teardown(() => execa('docker', ['rm', '-f', name], { reject: false }));
  return name;
}

async function dockerState(name: string): Promise<string | undefined> {
  const { stdout, exitCode } = await execa('docker', ['inspect', '--format', '{{.State.Status}}', name], {
    reject: false,
  });
  return exitCode === 0 ? stdout.trim() : undefined;
}

/** A cryo on Docker, and a counter on each engine to move, each read at 10 or more. */
async function crossEngineSetup(t: ExecutionContext<Context>, label: string) {
  const docker = await dockerCryo(t);
  const fromPodman = await runCounter(t, `${label}-to-docker`);
  const fromDocker = await runDockerCounter(t, `${label}-to-podman`);
  const podmanBefore = await podmanCounterAtLeast(fromPodman, 10);
  const dockerBefore = await podmanCounterAtLeast(fromDocker, 10, 'docker');
  return { docker, fromPodman, fromDocker, podmanBefore, dockerBefore };
}

/** Migrates `name` from `from` to `to` as `as`, and follows it to its end. */
async function migrate(
  from: TestCryo,
  name: string,
  to: TestCryo,
  as: string,
  body: { diskPreCopy?: boolean } = {},
): Promise<Migration> {
  const started = await from.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
    target: to.url,
    targetToken: to.token,
    name: as,
    ...body,
  });
  if (started.status !== 202) throw new Error(`migration refused: ${JSON.stringify(started.body)}`);
  return migrationEnd(from, started.body.id);
}

test('a Podman container migrates to a cryo on Docker, and a Docker container to Podman: each counts on there, its source gone', async (t) => {
  const { cryo } = t.context;
  const { docker, fromPodman, fromDocker, podmanBefore, dockerBefore } = await crossEngineSetup(t, 'moved');

  const inDocker = dockerMade(t, `${fromPodman}-moved`);
  const there = await migrate(cryo, fromPodman, docker, inDocker);
  t.is(there.status, 'succeeded', JSON.stringify(there));
  t.is(there.targetContainer?.name, inDocker);
  await countsOnInPodman(t, inDocker, podmanBefore, 'docker');
  t.is((await execa(PODMAN, ['container', 'exists', fromPodman], { reject: false })).exitCode, 1);

  const inPodman = made(t, `${fromDocker}-moved`);
  const back = await migrate(docker, fromDocker, cryo, inPodman);
  t.is(back.status, 'succeeded', JSON.stringify(back));
  t.is(back.targetContainer?.name, inPodman);
  t.is(
    back.phases.find((p) => p.name === 'precopy')?.status,
    'done',
    "Docker's source is held frozen: a disk pre-copy",
  );
  t.is(there.phases.find((p) => p.name === 'precopy')?.status, 'skipped', "Podman's source is not");
  await countsOnInPodman(t, inPodman, dockerBefore);
  t.is(await dockerState(fromDocker), undefined, 'the Docker source is removed');
});

test('a migration between Podman and Docker rolls back, both ways, when the target cannot restore: the source counts on, the target keeps nothing', async (t) => {
  const { cryo } = t.context;
  const { docker, fromPodman, fromDocker, podmanBefore, dockerBefore } = await crossEngineSetup(t, 'rb');
  // Each target's name is taken there: its restore fails after the source's dump.
  const takenInDocker = dockerMade(t, `${fromPodman}-taken`);
  await execa('docker', ['create', '--name', takenInDocker, NODE_IMAGE]);
  const takenInPodman = made(t, `${fromDocker}-taken`);
  await execa(PODMAN, ['create', '--name', takenInPodman, NODE_IMAGE]);

  for (const [from, name, to, taken, before, cli] of [
    [cryo, fromPodman, docker, takenInDocker, podmanBefore, PODMAN],
    [docker, fromDocker, cryo, takenInPodman, dockerBefore, 'docker'],
  ] as const) {
    // Without a disk pre-copy, whose container would find the name taken before the freeze.
    const done = await migrate(from, name, to, taken, { diskPreCopy: false });
    t.is(done.status, 'rolled_back', JSON.stringify(done));
    t.is(done.error?.phase, 'restore');
    t.is(done.error?.code, ErrorCode.TARGET_REFUSED);
    await countsOnInPodman(t, name, before, cli);
    const there = (await to.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints;
    t.false(
      there.some((c) => c.migration?.id === done.id),
      "the target's copy is removed",
    );
  }
  t.is(await dockerState(takenInDocker), 'created', "Docker's own container is untouched");
  t.is(await podmanState(takenInPodman), 'created', "Podman's own container is untouched");
});

test('a migration to Docker that cannot cross (post-copy, a volume) is refused before anything is frozen, and so is an unknown container', async (t) => {
  const { cryo } = t.context;
  const docker = await dockerCryo(t);
  const name = await runCounter(t, 'post-copy-to-docker');
  const withBind = await runCounter(t, 'bound-to-docker', ['-v', `${t.context.tmp}:/data`]);
  const listed = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body;
  const target = { target: docker.url, targetToken: docker.token };
  const postCopy = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/migrations`, {
    ...target,
    strategy: 'post-copy',
  });
  t.is(postCopy.status, 409, JSON.stringify(postCopy.body));
  t.is(postCopy.body.code, ErrorCode.POST_COPY_UNAVAILABLE);
  const bound = await cryo.api<ErrorBody>('POST', `/v1/containers/${withBind}/migrations`, target);
  t.is(bound.status, 409, JSON.stringify(bound.body));
  t.is(bound.body.code, ErrorCode.CROSS_ENGINE_UNSUPPORTED);
  t.regex(bound.body.message, /\/data.*to Docker/);
  for (const c of [name, withBind]) {
    t.is(await podmanState(c), 'running');
    const reading = await podmanCounterAtLeast(c, 1);
    await sleep(300);
    t.true((await podmanCounter(c)).count > reading.count, `${c} never frozen: it counts on`);
  }
  t.deepEqual((await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body, listed);

  const missing = await cryo.api<ErrorBody>('POST', '/v1/containers/cryo-podman-nothing/checkpoints', {});
  t.is(missing.status, 404);
  t.is(missing.body.code, ErrorCode.CONTAINER_NOT_FOUND);
});
