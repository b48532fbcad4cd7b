import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execa } from 'execa';
import { CryoProcess } from '../../harness/cryo-process.js';
import { BUSYBOX_IMAGE, requirePrerequisites } from '../../harness/prerequisites.js';
import { writeTar } from '../../harness/tar.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

interface Ctx {
  cryo: CryoProcess;
  dir: string;
  /** A tag of the busybox fixture, saved to `imageTar` and then removed from dockerd. */
  probe: string;
  imageTar: string;
}
const test = anyTest as TestFn<Ctx>;

// cryo runs as a process of its own: a request that crashes it must not take the test runner with it.
test.before(async (t) => {
  await requirePrerequisites();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-hostile-'));
  const probe = `cryo-test/hostile-probe:${randomBytes(4).toString('hex')}`;
  const imageTar = path.join(dir, 'image.tar');
  await execa('docker', ['tag', BUSYBOX_IMAGE, probe]);
  await execa('docker', ['save', '-o', imageTar, probe]);
  await execa('docker', ['rmi', probe]);
  t.context = { cryo: await CryoProcess.start(), dir, probe, imageTar };
});

test.after.always(async (t) => {
  await t.context.cryo?.stop();
  if (t.context.probe) await execa('docker', ['rmi', t.context.probe], { reject: false });
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

async function post(cryo: CryoProcess, url: string, type: string | undefined, body: string | Buffer) {
  const res = await fetch(`${cryo.url}${url}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cryo.token}`, ...(type ? { 'content-type': type } : {}) },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function imagePresent(ref: string): Promise<boolean> {
  return (await execa('docker', ['image', 'inspect', ref], { reject: false })).exitCode === 0;
}

async function stillServes(t: ExecutionContext, cryo: CryoProcess): Promise<void> {
  t.false(cryo.exited, 'cryo is still running');
  t.is((await fetch(`${cryo.url}/v1/health`)).status, 200);
}

test.serial('POST /v1/images with a JSON body is refused and cryo lives on', async (t) => {
  const { cryo } = t.context;
  const res = await post(cryo, '/v1/images', 'application/json', '{}');
  t.is(res.status, 415);
  t.is(res.body.code, ErrorCode.UNSUPPORTED_MEDIA_TYPE);
  await stillServes(t, cryo);
});

test.serial('POST /v1/images never loads a host file named in the body', async (t) => {
  const { cryo, probe, imageTar } = t.context;
  for (const type of ['text/plain', undefined, 'application/x-www-form-urlencoded']) {
    const res = await post(cryo, '/v1/images', type, imageTar);
    t.is(res.status, 415, String(type));
    t.is(res.body.code, ErrorCode.UNSUPPORTED_MEDIA_TYPE);
  }
  t.false(await imagePresent(probe), 'dockerd did not load the file the body named');
  const missing = await post(cryo, '/v1/images', 'text/plain', '/no/such/file.tar');
  t.is(missing.status, 415, 'a path that does not exist answers the same: nothing is revealed');
  await stillServes(t, cryo);
});

test.serial('POST /v1/images with a body that is no image archive is 400 IMAGE_INVALID', async (t) => {
  const { cryo } = t.context;
  const notImage = await writeTar([{ header: { name: 'hello.txt' }, body: Buffer.from('hi') }]);
  for (const body of [randomBytes(10_240), notImage, Buffer.alloc(0)]) {
    const res = await post(cryo, '/v1/images', 'application/x-tar', body);
    t.is(res.status, 400);
    t.is(res.body.code, ErrorCode.IMAGE_INVALID);
    t.truthy(res.body.hint);
    t.notRegex(String(res.body.message), /docker-import-\d+/);
  }
  await stillServes(t, cryo);
});

test.serial('POST /v1/images loads a real `docker save` stream', async (t) => {
  const { cryo, probe, imageTar } = t.context;
  const res = await post(cryo, '/v1/images', 'application/x-tar', await readFile(imageTar));
  t.is(res.status, 201);
  t.true(await imagePresent(probe));
});

test.serial('POST /v1/checkpoints with another content type is 415, not 500', async (t) => {
  const { cryo } = t.context;
  for (const type of ['text/plain', 'application/json']) {
    const res = await post(cryo, '/v1/checkpoints', type, type === 'text/plain' ? '/etc/passwd' : '{}');
    t.is(res.status, 415, type);
    t.is(res.body.code, ErrorCode.UNSUPPORTED_MEDIA_TYPE);
  }
  const list = await cryo.api<{ checkpoints: unknown[] }>('GET', '/v1/checkpoints');
  t.deepEqual(list.checkpoints, []);
  await stillServes(t, cryo);
});

test.serial(
  'an image id that climbs out of the API path is refused before Docker sees it, and cryo lives on',
  async (t) => {
    const { cryo } = t.context;
    for (const id of ['../../etc/passwd', '//etc/passwd', '/etc/passwd', 'a/../../b']) {
      const res = await fetch(`${cryo.url}/v1/images/present?id=${encodeURIComponent(id)}`, {
        headers: { authorization: `Bearer ${cryo.token}` },
      });
      t.is(res.status, 400, id);
      t.is(((await res.json()) as { code: string }).code, 'VALIDATION_FAILED');
    }
    await stillServes(t, cryo);
    const real = await fetch(`${cryo.url}/v1/images/present?id=${encodeURIComponent(BUSYBOX_IMAGE)}`, {
      headers: { authorization: `Bearer ${cryo.token}` },
    });
    t.deepEqual(await real.json(), { present: true });
  },
);
