import { watch } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { Health } from '../../src/domain/health.js';
import { DEFAULT_RUNTIME_STATE_DIR } from '../../src/defaults.js';
import { dockerExec, inspect, sleep } from '../../harness/containers.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { eventually } from '../../harness/eventually.js';
import { BUSYBOX_IMAGE } from '../../harness/prerequisites.js';

const test = cryoSuite();

// Counts in memory and appends each value to /tmp/n (in the root filesystem), so a restore that really goes on
// from the dump shows values that follow the last one written before it.
const COUNT = 'i=0; while true; do i=$((i+1)); echo $i >> /tmp/n; sleep 0.2; done';

async function lastCount(ref: string): Promise<number> {
  const text = await dockerExec(ref, ['tail', '-n', '1', '/tmp/n']).catch(() => '0');
  return Number(text.trim());
}

/** Waits until the container's counter has counted past `n`; returns the count then. */
function countedPast(ref: string, n: number): Promise<number> {
  return eventually(
    async () => {
      const last = await lastCount(ref);
      return last > n ? last : undefined;
    },
    { what: `the counter of ${ref} past ${n}`, intervalMs: 100 },
  );
}

/** The counter's file once it holds more than `n` values. */
async function countsPast(ref: string, n: number): Promise<number[]> {
  await countedPast(ref, n);
  return (await dockerExec(ref, ['cat', '/tmp/n'])).trim().split('\n').map(Number);
}

async function dockerInfo(): Promise<{ major: number; defaultRuntime: string }> {
  const { stdout } = await execa('docker', ['info', '--format', '{{.ServerVersion}} {{.DefaultRuntime}}']);
  const [version, defaultRuntime] = stdout.trim().split(' ');
  return { major: Number.parseInt(version!, 10), defaultRuntime: defaultRuntime! };
}

test("a restore as a new container runs under cryo's runtime, goes on counting, and never writes /etc/criu", async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('rt-src');
  // --init bind-mounts docker-init, which needs CRIU's compat mount engine; fileLocks is a per-restore option.
  await containers.run({ image: BUSYBOX_IMAGE, name, init: true, cmd: ['sh', '-c', COUNT] });
  const beforeDump = await countedPast(name, 5);
  const cp = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, { fileLocks: true });
  t.is(cp.status, 201, JSON.stringify(cp.body));

  await mkdir('/etc/criu', { recursive: true });
  const before = await readFile('/etc/criu/runc.conf', 'utf8').catch(() => null);
  const writes: string[] = [];
  const watcher = watch('/etc/criu', (event, file) => writes.push(`${event} ${String(file)}`));
  const copy = containers.uniqueName('rt-copy');
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${cp.body.id}/restore`, {
    name: copy,
  });
  await sleep(200);
  watcher.close();
  t.is(restored.status, 201, JSON.stringify(restored.body));
  t.deepEqual(writes, [], 'nothing under /etc/criu changed during the restore');
  t.is(await readFile('/etc/criu/runc.conf', 'utf8').catch(() => null), before);

  const raw = JSON.parse((await execa('docker', ['inspect', copy])).stdout) as [
    { HostConfig: { Runtime: string }; State: { Running: boolean; Pid: number } },
  ];
  t.is(raw[0].HostConfig.Runtime, 'cryo');
  t.true(raw[0].State.Running);
  t.true(raw[0].State.Pid > 0, 'dockerd knows the restored process');
  // The restored counter goes on from the dumped one: the file (from the rootfs diff) holds 1, 2, 3, ... with
  // no second 1, which a fresh start would have written.
  const values = await countsPast(copy, beforeDump + 3);
  t.true(values.length > beforeDump + 2, `${values.length} values after ${beforeDump} before the dump`);
  t.deepEqual(
    values,
    Array.from({ length: values.length }, (_, i) => i + 1),
  );
  // docker exec, stop and start work on it as on any container; a later start is a fresh start.
  await execa('docker', ['stop', '-t', '1', copy]);
  await execa('docker', ['start', copy]);
  t.true((await inspect(copy)).State.Running);
  // This container's marker (other engines on this machine may be restoring meanwhile).
  const copyId = (await inspect(copy)).Id;
  t.false(
    (await readdir(DEFAULT_RUNTIME_STATE_DIR).catch(() => [] as string[])).includes(copyId),
    'no marker is left',
  );
});

test("cryo's runtime passes every command through to runc while cryo is not restoring", async (t) => {
  const { containers } = t.context;
  const name = containers.uniqueName('rt-plain');
  await containers.run({ image: BUSYBOX_IMAGE, name, runtime: 'cryo', cmd: ['sh', '-c', COUNT] });
  t.true((await countedPast(name, 0)) > 0);
  t.is((await dockerExec(name, ['echo', 'through'])).trim(), 'through');
  await execa('docker', ['stop', '-t', '1', name]);
  await execa('docker', ['start', name]);
  await eventually(async () => (await inspect(name)).State.Running, { what: `${name} running again` });
  await execa('docker', ['pause', name]);
  t.true((await inspect(name)).State.Paused);
  await execa('docker', ['unpause', name]);
});

test("an in-place restore of a runc container: through docker start --checkpoint where that works without CRIU options, otherwise by a replacement under cryo's runtime with the same name, ports and volumes; /etc/criu is never written", async (t) => {
  const { cryo, containers } = t.context;
  const health = await cryo.api<Health>('GET', '/v1/health', undefined, null);
  t.is(health.body.docker.restorePath, 'cryo-runtime');
  const { major } = await dockerInfo();
  await mkdir('/etc/criu', { recursive: true });
  const writes: string[] = [];
  const watcher = watch('/etc/criu', (event, file) => writes.push(`${event} ${String(file)}`));
  t.teardown(() => watcher.close());

  const runtimeOf = async (ref: string) =>
    (await execa('docker', ['inspect', '-f', '{{.HostConfig.Runtime}}', ref])).stdout.trim();
  // A plain container: docker start --checkpoint restores it in place up to Docker 27 (moby/moby#50750).
  const plain = containers.uniqueName('rt-runc');
  const plainId = await containers.run({
    image: BUSYBOX_IMAGE,
    name: plain,
    runtime: 'runc',
    cmd: ['sh', '-c', COUNT],
  });
  const plainDumped = await countedPast(plain, 3);
  const cp = await cryo.api<Checkpoint>('POST', `/v1/containers/${plain}/checkpoints`, {});
  t.is(cp.status, 201, JSON.stringify(cp.body));
  const inPlace = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${cp.body.id}/restore`, {});
  t.is(inPlace.status, 201, JSON.stringify(inPlace.body));
  t.is(inPlace.body.container!.name, plain);
  if (major >= 28) {
    t.is(inPlace.body.replaced, plainId);
    t.not(inPlace.body.container!.id, plainId);
    t.is(await runtimeOf(plain), 'cryo');
  } else {
    t.is(inPlace.body.replaced, undefined);
    t.is(inPlace.body.container!.id, plainId);
    t.is(await runtimeOf(plain), 'runc');
  }
  const values = await countsPast(plain, plainDumped + 3);
  t.deepEqual(
    values,
    Array.from({ length: values.length }, (_, i) => i + 1),
    'counting on, not again',
  );

  // --init needs CRIU's compat mount engine, an option runc would read from /etc/criu/runc.conf: replaced on
  // every engine, with its anonymous volume's data and its published port.
  const withInit = containers.uniqueName('rt-init');
  const initId = await containers.run({
    image: BUSYBOX_IMAGE,
    name: withInit,
    runtime: 'runc',
    init: true,
    volumes: ['/data'],
    publish: 8080,
    cmd: ['sh', '-c', `echo kept > /data/file; ${COUNT}`],
  });
  const port = (await execa('docker', ['port', withInit, '8080/tcp'])).stdout.trim();
  await countedPast(withInit, 3);
  const cp2 = await cryo.api<Checkpoint>('POST', `/v1/containers/${withInit}/checkpoints`, {});
  t.is(cp2.status, 201, JSON.stringify(cp2.body));
  const replaced = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${cp2.body.id}/restore`, {});
  t.is(replaced.status, 201, JSON.stringify(replaced.body));
  t.is(replaced.body.replaced, initId);
  t.is(replaced.body.container!.name, withInit);
  t.is(await runtimeOf(withInit), 'cryo');
  t.is((await execa('docker', ['port', withInit, '8080/tcp'])).stdout.trim(), port, 'the same host port');
  t.is((await dockerExec(withInit, ['cat', '/data/file'])).trim(), 'kept', 'the same volume');
  const after = (await dockerExec(withInit, ['cat', '/tmp/n'])).trim().split('\n').map(Number);
  t.deepEqual(
    after,
    Array.from({ length: after.length }, (_, i) => i + 1),
  );
  t.is(
    (await execa('docker', ['ps', '-aq', '--filter', `id=${initId}`])).stdout.trim(),
    '',
    'the original is gone',
  );
  t.deepEqual(writes, [], 'nothing under /etc/criu changed');
});
