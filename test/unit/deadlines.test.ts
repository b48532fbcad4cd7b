import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { DockerClient } from '../../src/adapters/docker/docker-client.js';
import { servingLazyCheckpoint } from '../../src/adapters/docker/runc-lazy-checkpoint.js';
import { runCommand } from '../../src/adapters/exec/run-command.js';
import { HttpPeerAgent } from '../../src/adapters/peer/http-peer-agent.js';
import { DeadlineExceededError, ErrorCode, TargetError } from '../../src/domain/errors/index.js';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-deadline-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a command that stops itself ends at its deadline with DEADLINE_EXCEEDED naming it', async (t) => {
  const started = performance.now();
  const err = await t.throwsAsync(
    runCommand(
      'sh',
      ['-c', 'kill -STOP $$'],
      { ms: 300, setting: 'CRYO_COMMAND_TIMEOUT_MS' },
      { reject: false },
    ),
    { instanceOf: DeadlineExceededError },
  );
  t.is(err?.code, ErrorCode.DEADLINE_EXCEEDED);
  t.is(err?.statusCode, 504);
  t.regex(err!.message, /^sh -c kill -STOP \$\$ did not finish within 0\.3 s/);
  t.regex(err!.hint ?? '', /CRYO_COMMAND_TIMEOUT_MS/);
  t.true(performance.now() - started < 10_000, 'the stopped process was killed');
  const quick = await runCommand('sh', ['-c', 'echo ok'], { ms: 5_000, setting: 'X' });
  t.is(quick.stdout, 'ok');
});

test('a dockerd that is stopped (SIGSTOP) fails a call at the deadline, not never', async (t) => {
  const dir = await tempDir(t);
  const socket = path.join(dir, 'docker.sock');
  // A process that answers Docker's ping, then is stopped as `kill -STOP` stops a dockerd.
  const server = execa(
    'node',
    [
      '-e',
      `require('node:http').createServer((q, s) => s.end('OK')).listen(${JSON.stringify(socket)}, () => console.log('up'));`,
    ],
    { reject: false, buffer: false },
  );
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
  const client = new DockerClient(socket, 500);
  t.is(String(await client.call((d) => d.ping())), 'OK', 'it answers while it runs');
  process.kill(server.pid!, 'SIGSTOP');
  const started = performance.now();
  const err = await t.throwsAsync(
    client.call((d) => d.ping()),
    { instanceOf: DeadlineExceededError },
  );
  const waited = performance.now() - started;
  t.regex(err!.message, /^dockerd did not finish within 0\.5 s/);
  t.regex(err!.hint ?? '', /CRYO_DOCKER_TIMEOUT_MS/);
  t.true(waited >= 450 && waited < 5_000, `${waited} ms`);
  process.kill(server.pid!, 'SIGCONT');
});

test('a dockerd that accepts a connection and never answers fails the call at the deadline', async (t) => {
  const dir = await tempDir(t);
  const socket = path.join(dir, 'docker.sock');
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(socket, resolve));
  t.teardown(() => void silent.close());
  const err = await t.throwsAsync(
    new DockerClient(socket, 300).call((d) => d.listContainers()),
    {
      instanceOf: DeadlineExceededError,
    },
  );
  t.is(err?.code, ErrorCode.DEADLINE_EXCEEDED);
});

test('a peer that stops reading an archive mid-stream fails the transfer once nothing has moved for the deadline', async (t) => {
  // A target whose link dropped, or whose process stopped: it takes the connection, then reads nothing more.
  const stalled = http.createServer((req) => req.pause());
  await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    stalled.closeAllConnections();
    stalled.close();
  });
  const { port } = stalled.address() as AddressInfo;
  const peer = new HttpPeerAgent(`http://127.0.0.1:${port}`, 't'.repeat(16), 30_000, 500);
  // 256 MiB, made as it is read: far more than loopback's socket buffers hold.
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < 256; i++) yield Buffer.alloc(1 << 20);
    })(),
  );
  const started = performance.now();
  const err = await t.throwsAsync(peer.importArchive(body, 'mmmmmmmmmmmm'), { instanceOf: TargetError });
  t.is(err?.code, ErrorCode.TARGET_UNREACHABLE);
  t.regex(err!.message, /no progress either way for 0\.5 s/);
  t.true(performance.now() - started < 20_000);
});

test('a lazy dump whose page server never listens (a stopped runc) is aborted at its deadline, and the process killed', async (t) => {
  const dir = await tempDir(t);
  const pidFile = path.join(dir, 'runc.pid');
  // A runc that stops itself before CRIU would say that its page server listens.
  const runc = path.join(dir, 'runc');
  await writeFile(runc, `#!/bin/sh\necho $$ > ${pidFile}\nkill -STOP $$\n`, { mode: 0o755 });
  const started = performance.now();
  const err = await t.throwsAsync(
    servingLazyCheckpoint(
      {
        binary: runc,
        root: dir,
        containerId: 'c',
        imagesDir: path.join(dir, 'images'),
        workDir: dir,
        criuFlags: [],
      },
      { address: '127.0.0.1', port: 9 },
      300,
    ),
    { instanceOf: DeadlineExceededError },
  );
  t.regex(err!.message, /^the lazy dump \(runc checkpoint --lazy-pages\) did not finish within 0\.3 s/);
  t.regex(err!.hint ?? '', /CRYO_LAZY_DUMP_TIMEOUT_MS/);
  t.true(performance.now() - started < 15_000);
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  t.throws(() => process.kill(pid, 0), undefined, 'the stopped runc was killed');
});
