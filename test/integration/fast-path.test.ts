import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import type { Preflight } from '../../src/domain/process.js';
import { counterAtLeast, dockerExec, readCounter, sleep } from '../../harness/containers.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { BUSYBOX_IMAGE, NODE_IMAGE } from '../../harness/prerequisites.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

const test = cryoSuite({ serial: true, cleanEachTest: true });

interface Inspected {
  Id: string;
  RestartCount: number;
  State: { Running: boolean; Paused: boolean; Status: string; Pid: number };
  HostConfig: { RestartPolicy: { Name: string } };
  NetworkSettings: { IPAddress: string };
}

async function inspectFull(ref: string): Promise<Inspected> {
  const { stdout } = await execa('docker', ['inspect', ref]);
  return (JSON.parse(stdout) as Inspected[])[0]!;
}

/** An HTTP/1.1 client on one kept-alive TCP connection: each request must go over that same socket. */
async function keepAliveClient(host: string, port: number) {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, host);
    s.once('connect', () => resolve(s)).once('error', reject);
  });
  let closed = false;
  socket.on('close', () => (closed = true));
  let buffered = '';
  const get = () =>
    new Promise<{ count: number; bootId: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer on the kept-alive connection')), 15_000);
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString();
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? -1);
        if (length < 0 || buffered.length < end + 4 + length) return;
        const body = buffered.slice(end + 4, end + 4 + length);
        buffered = buffered.slice(end + 4 + length);
        socket.off('data', onData);
        clearTimeout(timer);
        resolve(JSON.parse(body) as { count: number; bootId: string });
      };
      socket.on('data', onData);
      socket.write(`GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: keep-alive\r\n\r\n`);
    });
  return { get, socket, closed: () => closed, localPort: socket.localPort };
}

test('a stop-mode checkpoint goes straight through runc: Docker shows the container exited and keeps its restart policy without restarting it; after the restore, docker ps, logs, exec and stop work', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('fast');
  await containers.run({
    image: NODE_IMAGE,
    name,
    publish: 8080,
    restart: 'always',
    env: { COUNTER_LOG: '1' },
  });
  const before = await counterAtLeast(name, 10);

  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {});
  t.is(created.status, 201, JSON.stringify(created.body));
  const stats = created.body.stats;
  t.is(stats.path, 'runc');
  t.true((stats.frozenMs ?? 0) > 0 && (stats.pagesWritten ?? 0) > 0, JSON.stringify(stats));
  t.true((stats.memdumpMs ?? -1) >= 0 && (stats.freezingMs ?? -1) >= 0, JSON.stringify(stats));

  await sleep(2_000);
  const stopped = await inspectFull(name);
  t.false(stopped.State.Running, 'Docker shows the container exited');
  t.false(stopped.State.Paused);
  t.is(stopped.State.Status, 'exited');
  t.is(stopped.RestartCount, 0, 'Docker did not restart it from scratch');
  t.is(stopped.HostConfig.RestartPolicy.Name, 'always', 'the restart policy is as it was');

  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`);
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const after = await readCounter(name);
  t.is(after.bootId, before.bootId, 'the same process, restored');
  t.true(after.count >= before.count);

  const { stdout: ps } = await execa('docker', [
    'ps',
    '--filter',
    `name=^${name}$`,
    '--format',
    '{{.Status}}',
  ]);
  t.regex(ps, /^Up /, 'docker ps shows it running');
  const running = await inspectFull(name);
  t.true(running.State.Running);
  t.is(running.HostConfig.RestartPolicy.Name, 'always');

  const later = await counterAtLeast(name, after.count + 5);
  const { stdout: logs } = await execa('docker', ['logs', '--tail', '3', name]);
  t.true(
    logs.split('\n').some((l) => Number(l.replace('count ', '')) >= later.count - 1),
    `docker logs shows the restored process's output: ${logs}`,
  );
  const viaExec = await dockerExec(name, ['node', '-e', 'process.stdout.write(String(process.pid))']);
  t.regex(viaExec, /^\d+$/, 'docker exec runs in the restored container');

  await execa('docker', ['stop', '-t', '2', name]);
  await sleep(1_000);
  const afterStop = await inspectFull(name);
  t.false(afterStop.State.Running, 'docker stop stops the restored container, and it stays stopped');
  t.is(afterStop.RestartCount, 0);
});

test('leaveRunning through runc keeps the original serving; a restore as a new container runs beside it and docker kill stops it', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('fastlr');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 10);

  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.is(created.body.stats.path, 'runc');
  const original = await inspectFull(name);
  t.true(original.State.Running && !original.State.Paused, 'the original runs on, unpaused');
  t.true((await readCounter(name)).count >= before.count);

  const copy = containers.uniqueName('fastcopy');
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`, {
    name: copy,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const fromCopy = await readCounter(copy);
  t.is(fromCopy.bootId, before.bootId);
  t.true((await inspectFull(name)).State.Running);

  await execa('docker', ['kill', copy]);
  await sleep(500);
  t.false((await inspectFull(copy)).State.Running, 'docker kill stops the restored container');
});

test('tcpEstablished: the pre-flight and a plain checkpoint refuse the open connection; with the option, the same client connection gets an answer after the restore', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('tcp');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080, env: { COUNTER_KEEPALIVE: '1' } });
  await counterAtLeast(name, 5);
  const ip = (await inspectFull(name)).NetworkSettings.IPAddress;
  const client = await keepAliveClient(ip, 8080);
  t.teardown(() => client.socket.destroy());
  const first = await client.get();

  const pre = await cryo.api<Preflight>('GET', `/v1/containers/${name}/preflight`);
  t.false(pre.body.checkpointable);
  t.true(
    pre.body.problems.some((p) => p.code === 'TCP_ESTABLISHED'),
    JSON.stringify(pre.body),
  );
  const preOk = await cryo.api<Preflight>('GET', `/v1/containers/${name}/preflight?tcpEstablished=true`);
  t.true(preOk.body.checkpointable, JSON.stringify(preOk.body));
  const refused = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {});
  t.is(refused.status, 409);
  t.is(refused.body.code, ErrorCode.PREFLIGHT_FAILED);

  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    tcpEstablished: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.false((await inspectFull(name)).State.Running);

  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`);
  t.is(restored.status, 201, JSON.stringify(restored.body));
  t.is((await inspectFull(name)).NetworkSettings.IPAddress, ip, 'the container has its address again');
  const second = await client.get();
  t.false(client.closed(), 'the client connection was never closed');
  t.is(second.bootId, first.bootId);
  t.true(second.count > first.count, `count went on: ${first.count} -> ${second.count}`);
});

test('ghostLimitBytes reaches CRIU per request: of two concurrent dumps of a container holding a deleted 2 MiB file, only the one with the higher limit succeeds, and its restore still reads the file', async (t) => {
  const { cryo, containers } = t.context;
  const script =
    'dd if=/dev/urandom of=/tmp/ghost bs=1024 count=2048 2>/dev/null; md5sum /tmp/ghost > /sum; exec 3</tmp/ghost; rm /tmp/ghost; sleep 100000';
  const a = containers.uniqueName('ghosta');
  const b = containers.uniqueName('ghostb');
  await containers.run({ image: BUSYBOX_IMAGE, name: a, cmd: ['sh', '-c', script] });
  await containers.run({ image: BUSYBOX_IMAGE, name: b, cmd: ['sh', '-c', script] });
  await sleep(1_500);
  const sum = (await dockerExec(a, ['cat', '/sum'])).split(' ')[0];

  const [withLimit, without] = await Promise.all([
    cryo.api<Checkpoint>('POST', `/v1/containers/${a}/checkpoints`, {
      leaveRunning: true,
      ghostLimitBytes: 4 << 20,
    }),
    cryo.api<ErrorBody & { details?: { logTail?: string[] } }>('POST', `/v1/containers/${b}/checkpoints`, {
      leaveRunning: true,
    }),
  ]);
  t.is(withLimit.status, 201, JSON.stringify(withLimit.body));
  t.is(without.status, 500, JSON.stringify(without.body));
  t.is(without.body.code, ErrorCode.CRIU_FAILED);
  t.regex(JSON.stringify(without.body), /ghost file/, "the error carries CRIU's own reason");
  const failed = await inspectFull(b);
  t.true(
    failed.State.Running && !failed.State.Paused,
    'the failed dump left the container running, unpaused',
  );

  await execa('docker', ['rm', '-f', a]);
  const copy = containers.uniqueName('ghostcopy');
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${withLimit.body.id}/restore`, {
    name: copy,
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const { stdout } = await execa('docker', ['exec', copy, 'sh', '-c', 'md5sum < /proc/1/fd/3']);
  t.is(stdout.split(' ')[0], sum, 'the deleted file came back with its contents');
});

test('a container with a host file bind-mounted and docker-init (--init) restores, also while another container is dumped, and runc.conf is put back', async (t) => {
  const { cryo, containers } = t.context;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-bind-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'app.conf');
  await writeFile(conf, 'setting = 1\n');
  const name = containers.uniqueName('bindfile');
  await containers.run({
    image: NODE_IMAGE,
    name,
    publish: 8080,
    init: true,
    volumes: [`${conf}:/etc/app.conf:ro`],
  });
  const other = containers.uniqueName('alongside');
  await containers.run({ image: NODE_IMAGE, name: other, publish: 8080 });
  const before = await counterAtLeast(name, 3);
  const runcConf = await readFile('/etc/criu/runc.conf', 'utf8').catch(() => undefined);

  for (let round = 0; round < 3; round++) {
    const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {});
    t.is(created.status, 201, JSON.stringify(created.body));
    // runc reads runc.conf on dumps too, and refuses the restore-only option there: the two must not overlap.
    const [restored, dumped] = await Promise.all([
      cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`),
      cryo.api<Checkpoint>('POST', `/v1/containers/${other}/checkpoints`, { leaveRunning: true }),
    ]);
    t.is(restored.status, 201, JSON.stringify(restored.body));
    t.is(dumped.status, 201, JSON.stringify(dumped.body));
  }
  const after = await readCounter(name);
  t.is(after.bootId, before.bootId, 'the same process, restored three times');
  t.true(after.count >= before.count);
  t.is(
    await dockerExec(name, [
      '/usr/bin/node',
      '-e',
      "process.stdout.write(require('fs').readFileSync('/etc/app.conf', 'utf8'))",
    ]),
    'setting = 1',
  );
  t.is(await readFile('/etc/criu/runc.conf', 'utf8').catch(() => undefined), runcConf);
});

test('bad CRIU options are refused before anything is frozen', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('badopt');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  await counterAtLeast(name, 3);
  for (const body of [
    { ghostLimitBytes: -1 },
    { ghostLimitBytes: 'big' },
    { tcpEstablished: 'yes' },
    { lazyPages: true },
  ]) {
    const res = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, body);
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.code, ErrorCode.VALIDATION_FAILED);
  }
  t.true((await inspectFull(name)).State.Running);
  t.is(
    (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)).body
      .checkpoints.length,
    0,
  );
});

test('fileLocks: a container holding a file lock is refused without it; with it, the lock is held again after the restore, and runc.conf is put back as it was', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('flock');
  // util-linux flock needs only libc, which the node image carries; it holds the lock while the counter runs.
  await execa('docker', [
    'create',
    '--name',
    name,
    '-p',
    '127.0.0.1::8080',
    NODE_IMAGE,
    '/flock',
    '/tmp/held.lock',
    '/usr/bin/node',
    '/app/counter.js',
  ]);
  await execa('docker', ['cp', '/usr/bin/flock', `${name}:/flock`]);
  await execa('docker', ['start', name]);
  const before = await counterAtLeast(name, 5);
  const lockHeld = async () =>
    (
      await execa('docker', ['exec', name, '/flock', '-n', '/tmp/held.lock', '/usr/bin/node', '-e', '0'], {
        reject: false,
      })
    ).exitCode !== 0;
  t.true(await lockHeld());

  const pre = await cryo.api<Preflight>('GET', `/v1/containers/${name}/preflight`);
  t.true(
    pre.body.problems.some((p) => p.code === 'FILE_LOCK'),
    JSON.stringify(pre.body),
  );
  t.true(
    (await cryo.api<Preflight>('GET', `/v1/containers/${name}/preflight?fileLocks=true`)).body.checkpointable,
  );

  const runcConf = '/etc/criu/runc.conf';
  const confBefore = await readFile(runcConf, 'utf8').catch(() => undefined);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    fileLocks: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`);
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const after = await readCounter(name);
  t.is(after.bootId, before.bootId);
  t.true(await lockHeld(), 'the restored container holds the lock again');
  t.is(await readFile(runcConf, 'utf8').catch(() => undefined), confBefore, 'runc.conf is as it was');
});
