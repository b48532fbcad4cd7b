import { mkdtemp, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { FsImageStore } from '../../src/adapters/store/fs-image-store.js';
import { openDatabase } from '../../src/adapters/store/database.js';
import { SqliteCheckpointCatalog } from '../../src/adapters/store/sqlite-checkpoint-catalog.js';
import { loadOrCreateToken } from '../../src/adapters/store/token-file.js';
import { CheckpointNameInUseError } from '../../src/domain/errors/index.js';
import type { Checkpoint } from '../../src/domain/checkpoint.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function checkpoint(
  id: string,
  name: string,
  containerId = 'a'.repeat(64),
  containerName = 'web',
): Checkpoint {
  return {
    id,
    name,
    kind: 'container',
    container: { id: containerId, name: containerName, image: 'img:1' },
    createdAt: new Date(Number.parseInt(id.slice(0, 11), 36)).toISOString(),
    leaveRunning: false,
    sizeBytes: 1,
    stats: { dumpMs: 1, totalMs: 1 },
    status: 'complete',
  };
}

test('the catalog keeps checkpoints across reopening and filters by container id, prefix or name', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'cryo.db');
  let db = openDatabase(file);
  let catalog = new SqliteCheckpointCatalog(db);
  const a = checkpoint('00000000001aaaaaaaaaa', 'one');
  const b = checkpoint('00000000002bbbbbbbbbb', 'two', 'b'.repeat(64), 'db');
  catalog.add(a);
  catalog.add(b);
  const dup = t.throws(() => catalog.add(checkpoint('00000000003cccccccccc', 'one')), {
    instanceOf: CheckpointNameInUseError,
  });
  t.is(dup?.statusCode, 409, 'names are unique per container');
  db.close();

  db = openDatabase(file);
  catalog = new SqliteCheckpointCatalog(db);
  t.deepEqual(catalog.get(a.id), a);
  t.deepEqual(catalog.list(), [a, b]);
  t.deepEqual(catalog.list({ container: 'web' }), [a]);
  t.deepEqual(catalog.list({ container: 'bbbb' }), [b]);
  t.deepEqual(catalog.list({ container: 'nothing' }), []);
  t.deepEqual(catalog.findByName(a.container!.id, 'one'), a);
  t.deepEqual([...catalog.ids()].sort(), [a.id, b.id]);
  t.true(catalog.remove(a.id));
  t.false(catalog.remove(a.id));
  t.is(catalog.get(a.id), undefined);
  db.close();
});

test('the image store shows a checkpoint only after commit, and sweeps what a crash left', async (t) => {
  const root = await tempDir(t);
  const store = new FsImageStore(root);
  await store.init();
  const staged = await store.stage('cp1');
  await mkdir(path.join(staged, 'checkpoint'));
  await writeFile(path.join(staged, 'checkpoint', 'pages-1.img'), Buffer.alloc(4096, 1));
  await writeFile(path.join(staged, 'config.dump'), '{}');
  await t.throwsAsync(stat(store.path('cp1')), { code: 'ENOENT' }, 'invisible while staged');

  const { path: final, sizeBytes } = await store.commit('cp1');
  t.is(final, store.path('cp1'));
  t.is(sizeBytes, 4096 + 2);
  t.deepEqual(await readdir(path.join(root, 'staging')), []);
  t.deepEqual((await readdir(final)).sort(), ['checkpoint', 'config.dump']);

  await store.stage('half');
  await mkdir(path.join(root, 'checkpoints', 'orphan'));
  const swept = await store.sweep(new Set(['cp1']));
  t.deepEqual(swept.sort(), [path.join('checkpoints', 'orphan'), path.join('staging', 'half')]);
  t.deepEqual(await readdir(path.join(root, 'checkpoints')), ['cp1']);
});

test('the token is generated once, 0600, and kept', async (t) => {
  const dir = await tempDir(t);
  const first = await loadOrCreateToken(dir);
  t.true(first.length >= 32);
  t.is((await stat(path.join(dir, 'token'))).mode & 0o777, 0o600);
  t.is(await loadOrCreateToken(dir), first);
});
