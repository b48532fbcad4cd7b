import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { toCreateOptions } from '../../src/adapters/docker/create-options.js';
import { DockerClient } from '../../src/adapters/docker/docker-client.js';
import { LibpodClient } from '../../src/adapters/podman/libpod-client.js';
import { linkTree } from '../../src/adapters/podman/podman-bundle.js';
import { criuStats } from '../../src/adapters/podman/podman-checkpointing.js';
import { podmanCriuFailure } from '../../src/adapters/podman/podman-criu-failure.js';
import { loadConfig } from '../../src/config.js';
import { type AppError, CriuError, ErrorCode, PodmanError } from '../../src/domain/errors/index.js';

test('CRYO_ENGINE picks Podman and CRYO_PODMAN_SOCKET its socket; Docker stays the default; others are refused', (t) => {
  t.is(loadConfig({}).engine, 'docker');
  t.is(loadConfig({}).podmanSocket, '/run/podman/podman.sock');
  const c = loadConfig({ CRYO_ENGINE: 'podman', CRYO_PODMAN_SOCKET: '/tmp/p.sock' });
  t.is(c.engine, 'podman');
  t.is(c.podmanSocket, '/tmp/p.sock');
  t.throws(() => loadConfig({ CRYO_ENGINE: 'containerd' }));
});

test("libpod's CRIU statistics (microseconds) become cryo's (milliseconds), absent ones left out", (t) => {
  t.deepEqual(criuStats({ freezing_time: 1500, frozen_time: 250_000, pages_written: 35 }), {
    freezingMs: 1.5,
    frozenMs: 250,
    pagesWritten: 35,
  });
  t.deepEqual(criuStats({}), {});
});

test("a failed dump through Podman carries the tail of the CRIU log Podman names; Podman's other errors pass as they are", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-podman-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'dump.log');
  await writeFile(
    log,
    '(00.01) Dumping\n(00.02) Error (criu/sk-inet.c:123): Connected TCP socket, consider using --tcp-established\n(00.03) Unlock\n',
  );
  const failed = await podmanCriuFailure(
    'the dump',
    new PodmanError(`checkpointing container x: criu failed: type DUMP errno 0\nlog file: ${log}`),
  );
  t.true(failed instanceof CriuError);
  const criu = failed as CriuError;
  t.is(criu.code, ErrorCode.CRIU_FAILED);
  t.regex(criu.message, /Connected TCP socket/);
  t.is(criu.logPath, log);
  t.true(criu.logTail.some((l) => l.includes('Unlock')));

  // Podman 4.3 names runc's command instead: the log is dump.log in its --work-path.
  const byWorkPath = (await podmanCriuFailure(
    'the dump',
    new PodmanError(
      `\`/usr/bin/runc checkpoint --image-path ${dir}/checkpoint --work-path ${dir} id\` failed: exit status 1`,
    ),
  )) as CriuError;
  t.is(byWorkPath.code, ErrorCode.CRIU_FAILED);
  t.is(byWorkPath.logPath, log);
  t.regex(byWorkPath.message, /Connected TCP socket/);

  const other = new PodmanError('no container with name or ID "x" found');
  t.is(await podmanCriuFailure('the dump', other), other);
});

test("a checkpoint's images are linked into Podman's bundle: files hard-linked, a chain's parent followed, nothing of cryo's changed", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-podman-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const parent = path.join(dir, 'base', 'checkpoint');
  const level = path.join(dir, 'level', 'checkpoint');
  await mkdir(parent, { recursive: true });
  await mkdir(level, { recursive: true });
  await writeFile(path.join(parent, 'pages-1.img'), 'parent pages');
  await writeFile(path.join(level, 'pages-1.img'), 'own pages');
  await symlink('../../base/checkpoint', path.join(level, 'parent'));

  const bundle = path.join(dir, 'bundle', 'checkpoint');
  await linkTree(level, bundle);
  t.is(await readFile(path.join(bundle, 'pages-1.img'), 'utf8'), 'own pages');
  t.is(await readFile(path.join(bundle, 'parent', 'pages-1.img'), 'utf8'), 'parent pages');
  t.true((await stat(path.join(bundle, 'parent'))).isDirectory(), 'a directory of its own, not a link out');
  t.is((await stat(path.join(bundle, 'pages-1.img'))).ino, (await stat(path.join(level, 'pages-1.img'))).ino);

  await rm(bundle, { recursive: true });
  t.is(
    await readFile(path.join(level, 'pages-1.img'), 'utf8'),
    'own pages',
    "removing Podman's copy keeps cryo's",
  );
  t.is(await readFile(path.join(parent, 'pages-1.img'), 'utf8'), 'parent pages');
});

test("Podman's ulimit names (RLIMIT_NOFILE) are given back to its create as it wants them (nofile)", (t) => {
  const opts = toCreateOptions(
    {
      Id: 'abc',
      Name: '/orig',
      Image: 'sha256:' + 'f'.repeat(64),
      Config: { Image: 'app:1' },
      HostConfig: {
        Ulimits: [
          { Name: 'RLIMIT_NOFILE', Soft: 20000, Hard: 20000 },
          { Name: 'nproc', Soft: 1, Hard: 2 },
        ],
      },
    },
    'copy',
    {},
  );
  t.deepEqual(opts.HostConfig?.Ulimits, [
    { Name: 'nofile', Soft: 20000, Hard: 20000 },
    { Name: 'nproc', Soft: 1, Hard: 2 },
  ]);
});

test("a Podman socket nobody answers on is PODMAN_UNAVAILABLE, naming the socket, from both of Podman's APIs", async (t) => {
  const socket = path.join(os.tmpdir(), `cryo-no-podman-${process.pid}.sock`);
  const compat = await t.throwsAsync(new DockerClient(socket, 1000, 'podman').call((d) => d.ping()));
  t.is((compat as AppError).code, ErrorCode.PODMAN_UNAVAILABLE);
  t.true(compat!.message.includes(socket));
  const libpod = await t.throwsAsync(new LibpodClient(socket, 1000).get('/info'));
  t.is((libpod as AppError).code, ErrorCode.PODMAN_UNAVAILABLE);
  // Docker's own client keeps Docker's words.
  const docker = await t.throwsAsync(new DockerClient(socket, 1000).call((d) => d.ping()));
  t.is((docker as AppError).code, ErrorCode.DOCKER_UNAVAILABLE);
});
