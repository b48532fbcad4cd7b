import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { DataDirInUseError, lockDataDir } from '../../src/adapters/store/data-dir-lock.js';
import { loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';

const lockModule = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../src/adapters/store/data-dir-lock.js',
);

async function dataDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Another process that holds the data directory until it is killed. */
function holder(dir: string) {
  const child = execa(
    'node',
    [
      '--input-type=module',
      '-e',
      `const { lockDataDir } = await import(${JSON.stringify(lockModule)});
       lockDataDir(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000);`,
    ],
    { reject: false, buffer: false },
  );
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    void child.then(() => reject(new Error('the holder ended before it locked')));
  });
  return { child, locked };
}

test('a second holder of a data directory is refused at once, naming the first; a kill -9 frees it', async (t) => {
  const dir = await dataDir(t);
  const first = holder(dir);
  t.teardown(() => void first.child.kill('SIGKILL'));
  await first.locked;
  const err = t.throws(() => lockDataDir(dir), { instanceOf: DataDirInUseError });
  t.is(err?.holderPid, first.child.pid);
  t.regex(
    err?.message ?? '',
    new RegExp(`another cryo \\(pid ${first.child.pid}\\) is using the data directory`),
  );
  first.child.kill('SIGKILL');
  await first.child;
  const lock = lockDataDir(dir);
  t.throws(
    () => lockDataDir(dir),
    { instanceOf: DataDirInUseError },
    'a second server in the same process too',
  );
  lock.release();
  lockDataDir(dir).release();
});

test('a cryo started on a data directory in use touches nothing: no recovery, no staging sweep', async (t) => {
  const dir = await dataDir(t);
  const first = holder(dir);
  t.teardown(() => void first.child.kill('SIGKILL'));
  await first.locked;
  // The first cryo's checkpoint, half written: a second one's sweep would remove it.
  await mkdir(path.join(dir, 'staging', 'inflight'), { recursive: true });
  await writeFile(path.join(dir, 'staging', 'inflight', 'seccomp.img'), 'x');
  const before = (await readdir(dir)).sort();
  const config = loadConfig({}, { dataDir: dir, listen: '127.0.0.1:0', dockerSocket: '/nonexistent.sock' });
  await t.throwsAsync(startServer(config), { instanceOf: DataDirInUseError });
  t.deepEqual(await readdir(path.join(dir, 'staging', 'inflight')), ['seccomp.img']);
  t.deepEqual((await readdir(dir)).sort(), before, 'no catalog, token or store was made');
});
