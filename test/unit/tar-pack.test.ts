import { appendFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { writeTar } from '../../src/adapters/archive/tar-pack.js';
import { readTar } from '../../harness/tar.js';

async function scratch(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-tar-pack-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a file that grows while it is packed is stored as it was when opened, and the pack succeeds', async (t) => {
  const dir = await scratch(t);
  const root = path.join(dir, 'root');
  await mkdir(root);
  const original = Buffer.alloc(16 << 20, 7);
  await writeFile(path.join(root, 'grow.bin'), original);
  let writing = true;
  const appender = (async () => {
    while (writing) await appendFile(path.join(root, 'grow.bin'), Buffer.alloc(256 << 10, 9));
  })();
  try {
    await writeTar(root, ['grow.bin'], path.join(dir, 'out.tar'));
  } finally {
    writing = false;
    await appender;
  }
  const [entry] = await readTar(await readFile(path.join(dir, 'out.tar')));
  t.truthy(entry);
  t.true(entry!.body.length >= original.length, 'at least what was there at the listing');
  t.true(entry!.body.subarray(0, original.length).equals(original));
  t.is(entry!.header.size, entry!.body.length);
});

test('a file that shrinks while it is packed keeps its size, padded with zeros', async (t) => {
  const dir = await scratch(t);
  const root = path.join(dir, 'root');
  await mkdir(root);
  await writeFile(path.join(root, 'shrink.bin'), Buffer.alloc(32 << 20, 5));
  const packing = writeTar(root, ['shrink.bin'], path.join(dir, 'out.tar'));
  await truncate(path.join(root, 'shrink.bin'), 1 << 20);
  await packing;
  const [entry] = await readTar(await readFile(path.join(dir, 'out.tar')));
  t.is(entry!.header.size, entry!.body.length);
  t.true(entry!.body.subarray(0, 1 << 20).every((b) => b === 5));
});
