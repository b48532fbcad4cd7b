import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import type { Preflight } from '../../src/domain/process.js';
import type { Health } from '../../src/domain/health.js';
import { LABEL_RESTORED_FROM } from '../../src/domain/labels.js';
import { counterAtLeast, hostPort, inspect, readCounter, readJson, sleep } from '../../harness/containers.js';
import { eventually } from '../../harness/eventually.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { BUSYBOX_IMAGE, NODE_IMAGE } from '../../harness/prerequisites.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

const test = cryoSuite({ cleanEachTest: true });

/** The counter's file, read with `docker cp`, which also works on a stopped container. */
async function counterLines(ref: string): Promise<number[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-cp-'));
  try {
    await execa('docker', ['cp', `${ref}:/state/counter.log`, path.join(dir, 'counter.log')]);
    const text = await readFile(path.join(dir, 'counter.log'), 'utf8');
    return text.split('\n').filter(Boolean).map(Number);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

test('checkpoint stops the counter, the catalog survives a restart, and the restore goes on from where it was', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('counter');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 15);

  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, { name: 'first' });
  t.is(created.status, 201, JSON.stringify(created.body));
  const checkpoint = created.body;
  t.is(checkpoint.name, 'first');
  t.is(checkpoint.container!.name, name);
  t.is(checkpoint.container!.image, NODE_IMAGE);
  t.is(checkpoint.status, 'complete');
  t.false(checkpoint.leaveRunning);
  t.true(checkpoint.sizeBytes > 1_000_000, `sizeBytes ${checkpoint.sizeBytes}`);
  t.true(checkpoint.stats.dumpMs > 0 && checkpoint.stats.totalMs >= checkpoint.stats.dumpMs);
  t.true(await exists(path.join(cryo.dataDir, 'checkpoints', checkpoint.id, 'checkpoint', 'inventory.img')));
  t.false((await inspect(name)).State.Running, 'a stop-mode checkpoint leaves the container stopped');

  const linesAtCheckpoint = await counterLines(name);
  t.true(linesAtCheckpoint.length >= before.count);

  await cryo.restart();
  const listed = await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`);
  t.deepEqual(listed.body.checkpoints, [checkpoint], 'the catalog survives a restart');

  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${checkpoint.id}/restore`);
  t.is(restored.status, 201, JSON.stringify(restored.body));
  t.is(restored.body.container!.id, checkpoint.container!.id);
  t.true(restored.body.restoreMs > 0);

  const after = await readCounter(name);
  t.is(after.bootId, before.bootId, 'the same process came back, not a fresh start');
  t.is(after.startedAt, before.startedAt);
  t.true(after.count >= before.count, `counter went on from ${before.count}, now ${after.count}`);
  const later = await counterAtLeast(name, after.count + 3);
  t.is(later.bootId, before.bootId);

  const lines = await counterLines(name);
  t.deepEqual(
    lines.slice(0, linesAtCheckpoint.length),
    linesAtCheckpoint,
    'the file written before the checkpoint is still there',
  );
  t.deepEqual(
    lines,
    lines.map((_, i) => i + 1),
    'the restored process appends after the last value it wrote: 1, 2, 3, ... with no gap or restart',
  );
  t.deepEqual(await readdir('/tmp').then((e) => e.filter((d) => d.startsWith('ctrd-checkpoint'))), []);
});

test('leaveRunning keeps the original serving, and a restore under a new name runs beside it', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('source');
  const originalId = await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 10);

  const created = await cryo.api<Checkpoint>(
    'POST',
    `/v1/containers/${originalId.slice(0, 12)}/checkpoints`,
    {
      leaveRunning: true,
    },
  );
  t.is(created.status, 201, JSON.stringify(created.body));
  t.true(created.body.leaveRunning);
  t.regex(created.body.name, /^checkpoint-/);
  t.is(created.body.container!.id, originalId);

  const state = (await inspect(name)).State;
  t.true(state.Running);
  t.false(state.Paused, 'never left paused');
  const stillServing = await readCounter(name);
  t.is(stillServing.bootId, before.bootId);
  const progressed = await counterAtLeast(name, stillServing.count + 5);
  t.is(progressed.bootId, before.bootId, 'the original keeps counting after a leaveRunning checkpoint');

  const clone = containers.uniqueName('clone');
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
    name: clone,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  t.is(restored.body.container!.name, clone);
  t.not(restored.body.container!.id, originalId);

  const cloned = await readCounter(clone);
  t.is(cloned.bootId, before.bootId, 'the clone carries the checkpointed process');
  t.true(cloned.count >= before.count);
  const labels = (await inspect(clone)).Config.Labels ?? {};
  t.is(labels[LABEL_RESTORED_FROM], created.body.id);

  const original = await inspect(name);
  t.is(original.Id, originalId);
  t.true(original.State.Running, 'the original stays as it is');
  t.not(await hostPort(name, 8080), await hostPort(clone, 8080));
  const originalLater = await readCounter(name);
  t.true(originalLater.count >= progressed.count);
  t.is(originalLater.bootId, before.bootId);

  // One checkpoint restores any number of times.
  const second = containers.uniqueName('clone2');
  const again = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
    name: second,
  });
  t.is(again.status, 201, JSON.stringify(again.body));
  t.is((await readCounter(second)).bootId, before.bootId);

  const taken = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
    name: clone,
  });
  t.is(taken.status, 409);
  t.is(taken.body.code, ErrorCode.CONTAINER_NAME_IN_USE);

  const running = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${created.body.id}/restore`);
  t.is(running.status, 409);
  t.is(running.body.code, ErrorCode.CONTAINER_RUNNING);
});

test('a restore with abandonOnDisconnect whose caller goes away leaves no container; the checkpoint restores later', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('abandoned');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 5);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));

  const copy = containers.uniqueName('copy');
  const caller = new AbortController();
  const answer = fetch(`${cryo.url}/v1/checkpoints/${created.body.id}/restore`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cryo.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: copy, abandonOnDisconnect: true }),
    signal: caller.signal,
  });
  // Gone while Docker creates or restores the copy.
  await eventually(
    async () => (await execa('docker', ['ps', '-aq', '--filter', `name=^${copy}$`])).stdout !== '',
    {
      what: 'the copy created',
      timeoutMs: 2_000,
      intervalMs: 10,
    },
  ).catch(() => undefined);
  caller.abort();
  await t.throwsAsync(answer, { any: true, name: 'AbortError' });
  await eventually(
    async () => (await execa('docker', ['ps', '-aq', '--filter', `name=^${copy}$`])).stdout === '',
    {
      what: 'the copy whose caller went away removed, whether or not it had started',
      timeoutMs: 10_000,
      intervalMs: 100,
    },
  );

  const again = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
    name: copy,
    abandonOnDisconnect: true,
  });
  t.is(again.status, 201, JSON.stringify(again.body));
  const restored = await readCounter(copy);
  t.is(restored.bootId, before.bootId, 'the checkpoint is intact and restores');
  t.true(restored.count >= before.count);
});

test('a container on a console of its own (docker run -it): the pre-flight passes, and it checkpoints and restores', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('console');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080, tty: true, env: { COUNTER_LOG: '1' } });
  t.true((await inspect(name)).Config.Tty);
  const before = await counterAtLeast(name, 5);

  const preflight = await cryo.api<Preflight>('GET', `/v1/containers/${name}/preflight`);
  t.true(preflight.body.checkpointable, JSON.stringify(preflight.body.problems));
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {});
  t.is(created.status, 201, JSON.stringify(created.body));
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`);
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const after = await readCounter(name);
  t.is(after.bootId, before.bootId, 'the same process, on its console again');
  t.true(after.count >= before.count);
  // What the restored process prints still reaches Docker's console.
  const later = await counterAtLeast(name, after.count + 3);
  let logs = '';
  for (let i = 0; i < 50 && !logs.includes(`count ${later.count}`); i++) {
    logs = (await execa('docker', ['logs', name])).stdout;
    await sleep(100);
  }
  t.true(logs.includes(`count ${later.count}`), 'the restored process writes to its console');
});

test('the pre-flight refuses an established connection; forced, the checkpoint fails with CRIU_FAILED and the log tail and leaves the container running, unpaused, with nothing stored', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('tcp');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  await counterAtLeast(name, 3);

  // An established TCP connection inside the container: CRIU refuses to dump it without --tcp-established.
  const port = await hostPort(name, 8080);
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  await sleep(300);
  try {
    const preflight = await cryo.api<ErrorBody & { details: { problems: { code: string }[] } }>(
      'POST',
      `/v1/containers/${name}/checkpoints`,
      { name: 'doomed' },
    );
    t.is(preflight.status, 409, 'the pre-flight refuses before anything is frozen');
    t.is(preflight.body.code, ErrorCode.PREFLIGHT_FAILED);
    t.deepEqual(
      preflight.body.details.problems.map((p) => p.code),
      ['TCP_ESTABLISHED'],
    );
    const report = await cryo.api<{ checkpointable: boolean }>('GET', `/v1/containers/${name}/preflight`);
    t.false(report.body.checkpointable);
    const res = await cryo.api<ErrorBody & { details: { logTail: string[] } }>(
      'POST',
      `/v1/containers/${name}/checkpoints`,
      { name: 'doomed', force: true },
    );
    t.is(res.status, 500, JSON.stringify(res.body));
    t.is(res.body.code, ErrorCode.CRIU_FAILED);
    t.true(res.body.details.logTail.length > 0, 'carries the tail of the CRIU log');
    t.true(
      res.body.details.logTail.some((l) => /tcp|socket/i.test(l)),
      res.body.details.logTail.join('\n'),
    );
  } finally {
    socket.destroy();
  }

  const state = (await inspect(name)).State;
  t.true(state.Running, 'still running');
  t.false(state.Paused, 'not paused');
  const reading = await readCounter(name);
  await counterAtLeast(name, reading.count + 3);
  const list = await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`);
  t.deepEqual(list.body.checkpoints, []);
  t.deepEqual(await readdir(path.join(cryo.dataDir, 'staging')), [], 'nothing left in staging');
});

test('two checkpoints of one container at once: one succeeds, the other gets 409, and an unfinished checkpoint is invisible', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('memory');
  await containers.run({
    image: NODE_IMAGE,
    name,
    publish: 8080,
    env: { MEMORY_MIB: '256' },
    cmd: ['/usr/bin/node', '/app/memory.js'],
  });
  const memory = await readJson<{ sha256: string; initial: string }>(name, 60_000);
  t.is(memory.sha256, memory.initial);

  const first = cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    name: 'a',
  });
  await sleep(50);
  const second = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    name: 'b',
  });
  // Once the first checkpoint is being written (after its pre-flight), it must not be listed yet.
  const staged = await eventually(
    async () => {
      const dirs = await readdir(path.join(cryo.dataDir, 'staging'));
      return dirs.length > 0 ? dirs : undefined;
    },
    { what: 'the first checkpoint staged', timeoutMs: 2_000, intervalMs: 20 },
  ).catch(() => [] as string[]);
  const during = await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`);
  const done = await first;

  t.is(second.status, 409, JSON.stringify(second.body));
  t.is(second.body.code, ErrorCode.CHECKPOINT_IN_PROGRESS);
  t.truthy(second.body.hint);
  t.is(staged.length, 1, 'the first checkpoint was still being written');
  t.deepEqual(during.body.checkpoints, [], 'a checkpoint is invisible until complete');
  t.is(done.status, 201, JSON.stringify(done.body));
  t.true(done.body.sizeBytes > 256 * 1024 * 1024, `a 256 MiB workload gives ${done.body.sizeBytes} bytes`);

  const after = await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`);
  t.deepEqual(
    after.body.checkpoints.map((c) => c.id),
    [done.body.id],
  );
  const dup = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    name: 'a',
  });
  t.is(dup.status, 409);
  t.is(dup.body.code, ErrorCode.CHECKPOINT_NAME_IN_USE);

  // The memory image restores intact into a new container.
  const clone = containers.uniqueName('memclone');
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${done.body.id}/restore`, {
    name: clone,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const cloned = await readJson<{ sha256: string; initial: string }>(clone, 60_000);
  t.is(cloned.sha256, memory.initial, 'every page of the 256 MiB came back');

  const deleted = await cryo.api('DELETE', `/v1/checkpoints/${done.body.id}`);
  t.is(deleted.status, 204);
  t.false(await exists(path.join(cryo.dataDir, 'checkpoints', done.body.id)), 'the files are gone');
  const gone = await cryo.api<ErrorBody>('GET', `/v1/checkpoints/${done.body.id}`);
  t.is(gone.status, 404);
  t.is(gone.body.code, ErrorCode.CHECKPOINT_NOT_FOUND);
});

test('error paths: unknown and stopped containers, bad names, missing or wrong token', async (t) => {
  const { cryo, containers } = t.context;

  const unknown = await cryo.api<ErrorBody>('POST', '/v1/containers/no-such-container-cryo/checkpoints', {});
  t.is(unknown.status, 404);
  t.is(unknown.body.code, ErrorCode.CONTAINER_NOT_FOUND);
  t.truthy(unknown.body.hint);

  const stopped = containers.uniqueName('stopped');
  await execa('docker', ['create', '--name', stopped, BUSYBOX_IMAGE, 'sleep', '60']);
  const notRunning = await cryo.api<ErrorBody>('POST', `/v1/containers/${stopped}/checkpoints`, {});
  t.is(notRunning.status, 409);
  t.is(notRunning.body.code, ErrorCode.CONTAINER_NOT_RUNNING);

  const traversalRef = await cryo.api<ErrorBody>(
    'POST',
    `/v1/containers/${encodeURIComponent('../x')}/checkpoints`,
    {},
  );
  t.is(traversalRef.status, 400);
  t.is(traversalRef.body.code, ErrorCode.VALIDATION_FAILED);

  const runningName = containers.uniqueName('names');
  await containers.run({ image: BUSYBOX_IMAGE, name: runningName, cmd: ['sleep', '600'] });
  for (const bad of ['../x', '/etc', 'a/b', '.hidden', 'x'.repeat(200), '']) {
    const res = await cryo.api<ErrorBody>('POST', `/v1/containers/${runningName}/checkpoints`, { name: bad });
    t.is(res.status, 400, `name ${JSON.stringify(bad)}`);
    t.is(res.body.code, ErrorCode.VALIDATION_FAILED);
    t.truthy(res.body.message);
  }
  const unknownKey = await cryo.api<ErrorBody>('POST', `/v1/containers/${runningName}/checkpoints`, {
    exit: true,
  });
  t.is(unknownKey.status, 400);
  t.is(unknownKey.body.code, ErrorCode.VALIDATION_FAILED);
  const badRestoreName = await cryo.api<ErrorBody>('POST', '/v1/checkpoints/0000000000000000/restore', {
    name: '../x',
  });
  t.is(badRestoreName.status, 400);
  t.is((await inspect(runningName)).State.Running, true, 'refused requests touched nothing');

  const noToken = await cryo.api<ErrorBody>('GET', '/v1/checkpoints', undefined, null);
  t.is(noToken.status, 401);
  t.is(noToken.body.code, ErrorCode.UNAUTHORIZED);
  const wrongToken = await cryo.api<ErrorBody>(
    'POST',
    `/v1/containers/${runningName}/checkpoints`,
    {},
    'x'.repeat(40),
  );
  t.is(wrongToken.status, 401);
  t.is(wrongToken.body.code, ErrorCode.UNAUTHORIZED);
  const openapi = await cryo.api('GET', '/openapi.json', undefined, null);
  t.is(openapi.status, 401);

  const notFound = await cryo.api<ErrorBody>('POST', '/v1/checkpoints/0000000000000000/restore', {});
  t.is(notFound.status, 404);
  t.is(notFound.body.code, ErrorCode.CHECKPOINT_NOT_FOUND);
  const badId = await cryo.api<ErrorBody>('GET', '/v1/checkpoints/..%2F..%2Fetc');
  t.is(badId.status, 400);
});

test('health answers without a token and reports the real Docker and CRIU', async (t) => {
  const { cryo } = t.context;
  const res = await cryo.api<Health>('GET', '/v1/health', undefined, null);
  t.is(res.status, 200);
  t.is(res.body.status, 'ok');
  const { stdout: dockerVersion } = await execa('docker', ['version', '--format', '{{.Server.Version}}']);
  const info = JSON.parse((await execa('docker', ['info', '--format', '{{json .}}'])).stdout) as {
    Driver: string;
    DefaultRuntime: string;
    Runtimes: Record<string, unknown>;
  };
  t.true('cryo' in info.Runtimes, "setup-host.sh registers cryo's runtime");
  t.deepEqual(res.body.docker, {
    engine: 'docker',
    ok: true,
    version: dockerVersion.trim(),
    experimental: true,
    storageDriver: info.Driver,
    containerdStore: info.Driver === 'overlayfs',
    cryoRuntime: true,
    defaultRuntime: info.DefaultRuntime,
    restorePath: 'cryo-runtime',
  });
  const { stdout: criuVersion } = await execa('criu', ['--version']);
  t.true(criuVersion.includes(`Version: ${res.body.criu.version}`));
  t.true(res.body.criu.ok);
  t.is(res.body.kernel, (await execa('uname', ['-r'])).stdout.trim());

  const openapi = await cryo.api<{ paths: Record<string, unknown> }>('GET', '/openapi.json');
  t.is(openapi.status, 200);
  t.truthy(openapi.body.paths['/v1/containers/{ref}/checkpoints']);
  const docs = await fetch(`${cryo.url}/docs/`, { headers: { authorization: `Bearer ${cryo.token}` } });
  t.is(docs.status, 200);
  t.regex(await docs.text(), /swagger/i);
});

test('ten restores leave no copies behind: free disk space returns to where it was', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('disk');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  await counterAtLeast(name, 3);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  const used = async () => {
    await execa('sync');
    return Number((await execa('df', ['--output=used', '-B1', '/var/lib/docker'])).stdout.split('\n')[1]);
  };
  const leftovers = async () => (await readdir('/tmp')).filter((d) => d.startsWith('ctrd-checkpoint'));
  const before = await used();
  for (let i = 0; i < 10; i++) {
    const clone = containers.uniqueName(`disk${i}`);
    const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
      name: clone,
    });
    t.is(restored.status, 201, JSON.stringify(restored.body));
    await execa('docker', ['rm', '-f', clone]);
  }
  const after = await used();
  t.deepEqual(await leftovers(), [], 'no containerd copies left in /tmp');
  // One leaked copy of this checkpoint is about its size; ten would be far above the slack.
  const slack = Math.max(created.body.sizeBytes * 2, 16 * 1024 * 1024);
  t.true(
    after - before < slack,
    `used disk grew by ${after - before} bytes over 10 restores (slack ${slack})`,
  );
});
