import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import test from 'ava';
import { openDatabase } from '../../src/adapters/store/database.js';
import { SqliteCheckpointCatalog } from '../../src/adapters/store/sqlite-checkpoint-catalog.js';
import { newId } from '../../src/services/support/ids.js';
import { fakeServices } from './fake-services.js';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sweep-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("migration checkpoints are kept for the retention period on each side, then removed unless in use; users' never", async (t) => {
  const dir = await tempDir(t);
  const db = openDatabase(path.join(dir, 'cryo.db'));
  t.teardown(async () => db.close());
  const now = { ms: Date.UTC(2026, 10, 21) };
  const clock = { now: () => now.ms };
  const { runtime, checkpoints, migrations } = await fakeServices(dir, db, clock);
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const create = (name: string, migration?: string) =>
    checkpoints.create(
      'web',
      { name, leaveRunning: true, includeVolumes: false },
      migration ? { migration: { id: migration } } : {},
    );
  const old = await create('sent-a', 'aaaaaaaaaaaa');
  const busy = await create('sent-b', 'bbbbbbbbbbbb');
  // A user's own checkpoints, whatever their name: the sweeper goes by the catalog's mark alone.
  const nightly = await create('migration-nightly');
  const lookalike = await create(`migration-${newId(now.ms)}`);
  now.ms += 30 * 60_000;
  const recent = await create('sent-c', 'cccccccccccc');

  t.deepEqual(await migrations.sweep(), [], 'nothing is past the retention period yet');
  now.ms += 31 * 60_000;
  const { release } = checkpoints.retain(busy.id);
  t.deepEqual(await migrations.sweep(), [old.id]);
  release();
  t.deepEqual(await migrations.sweep(), [busy.id]);
  now.ms += 48 * 3_600_000;
  t.deepEqual(await migrations.sweep(), [recent.id]);
  t.deepEqual(
    checkpoints
      .list()
      .map((c) => c.name)
      .sort(),
    [nightly.name, lookalike.name].sort(),
    "a user's checkpoints stay, days after the retention period",
  );
});

test('a catalog from before the mark: the records migrations named migration-<id> get it, no others', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'cryo.db');
  // The catalog as cryo left it before the mark: the mark's migration and the two after it (the tables of the
  // registry store) not run yet.
  const current = openDatabase(file);
  const version = current.pragma('user_version', { simple: true }) as number;
  current.close();
  const raw = new Database(file);
  raw.exec('DROP TABLE layer_seals; DROP TABLE blob_locations');
  raw.pragma(`user_version = ${version - 3}`);
  const id = newId(Date.UTC(2026, 10, 1));
  const record = (name: string, n: number) => ({
    id: `${'0'.repeat(11)}${n}`,
    name,
    kind: 'container',
    container: { id: 'c'.repeat(64), name: 'web', image: 'busybox' },
    createdAt: '2026-11-01T00:00:00.000Z',
    leaveRunning: true,
    sizeBytes: 1,
    stats: { dumpMs: 1, totalMs: 1 },
    status: 'complete',
  });
  const insert = raw.prepare(
    'INSERT INTO checkpoints (id, name, container_id, container_name, created_at, body) VALUES (?, ?, ?, ?, ?, ?)',
  );
  for (const [n, name] of [
    `migration-${id}`,
    `migration-${id}-seed`,
    'migration-nightly',
    'nightly',
  ].entries()) {
    const r = record(name, n);
    insert.run(r.id, r.name, r.container.id, 'web', r.createdAt, JSON.stringify(r));
  }
  raw.close();

  const db = openDatabase(file);
  t.teardown(async () => db.close());
  const marks = new SqliteCheckpointCatalog(db).list().map((c) => [c.name, c.migration?.id]);
  t.deepEqual(marks, [
    [`migration-${id}`, id],
    [`migration-${id}-seed`, id],
    ['migration-nightly', undefined],
    ['nightly', undefined],
  ]);
});
