import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { FileHasher } from '../../src/adapters/archive/file-hasher.js';
import { sha256 } from '../helpers/tar.js';

const MIB = 1024 * 1024;

test('hashes a file as it is written, across read-buffer boundaries, and again after the thread is closed', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-hasher-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hasher = new FileHasher();
  for (const size of [0, 1, MIB, MIB + 1, 4 * MIB + 3]) {
    const body = randomBytes(size);
    const handle = await open(path.join(dir, `f${size}`), 'wx+');
    const job = hasher.begin(handle.fd);
    // Written in uneven parts, each announced once it is on the file.
    for (let at = 0; at < size;) {
      const part = Math.min(size - at, 700_000);
      await handle.write(body, at, part, at);
      at += part;
      job.upto(at);
    }
    t.deepEqual(await job.digest(), { sha256: sha256(body), size }, `${size} bytes`);
    await handle.close();
    if (size === MIB) await hasher.close();
  }
});

test('a file shorter than announced fails its digest', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-hasher-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const handle = await open(path.join(dir, 'short'), 'wx+');
  await handle.write(Buffer.alloc(10), 0, 10, 0);
  const job = new FileHasher().begin(handle.fd);
  job.upto(20);
  await t.throwsAsync(job.digest(), { message: /the file ends at 10 bytes/ });
  await handle.close();
});
