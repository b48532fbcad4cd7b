import {
  appendFile,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { sameStamp, stampOf } from '../../src/adapters/archive/file-stamps.js';
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

test('a path listed and then deleted by the workload is left out of the pack, not an error', async (t) => {
  const dir = await scratch(t);
  const root = path.join(dir, 'root');
  await mkdir(path.join(root, 'sub'), { recursive: true });
  await writeFile(path.join(root, 'kept'), 'k');
  const count = await writeTar(root, ['gone-file', 'gone-dir', 'kept', 'sub'], path.join(dir, 'out.tar'));
  t.is(count, 2);
  const names = (await readTar(await readFile(path.join(dir, 'out.tar')))).map((e) => e.header.name);
  t.deepEqual(names, ['kept', 'sub']);
});

test('stamps: a file read long after its last change is stamped; one changed since, or too close to its read, is not the same', async (t) => {
  const dir = await scratch(t);
  const root = path.join(dir, 'root');
  await mkdir(root);
  await writeFile(path.join(root, 'old'), 'old');
  await writeFile(path.join(root, 'fresh'), 'fresh');
  const past = new Date(Date.now() - 60_000);
  // ctime cannot be set; what matters is the distance from the read, so the reads are placed in the future.
  const stamps = new Map<string, string>();
  await writeTar(root, ['old', 'fresh'], path.join(dir, 'out.tar'), stamps);
  t.deepEqual([...stamps.keys()].sort(), ['fresh', 'old']);
  t.is(stamps.get('fresh'), '', 'written within 100 ms of its read: never taken as unchanged');
  const st = await lstat(path.join(root, 'old'), { bigint: true });
  const later = BigInt(Date.now() + 5_000) * 1_000_000n;
  const stamp = stampOf(st, later);
  t.not(stamp, '');
  t.true(sameStamp(stamp, await lstat(path.join(root, 'old'), { bigint: true })));
  await writeFile(path.join(root, 'old'), 'new');
  t.false(sameStamp(stamp, await lstat(path.join(root, 'old'), { bigint: true })), 'a write moves it');
  await utimes(path.join(root, 'old'), past, past);
  t.false(
    sameStamp(stamp, await lstat(path.join(root, 'old'), { bigint: true })),
    'putting mtime back does not hide it (ctime moved)',
  );
  t.false(sameStamp('', st), 'a racy stamp matches nothing');
  t.false(sameStamp(undefined, st), 'nor does a path the seed never had');
});
