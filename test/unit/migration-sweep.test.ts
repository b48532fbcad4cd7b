import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { openDatabase } from '../../src/adapters/store/database.js';
import { fakeServices } from './fake-services.js';

test('migration checkpoints are kept for the retention period on each side, then removed unless in use', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sweep-'));
  const db = openDatabase(path.join(dir, 'cryo.db'));
  t.teardown(async () => {
    db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const now = { ms: Date.UTC(2026, 10, 21) };
  const clock = { now: () => now.ms };
  const { runtime, checkpoints, migrations } = await fakeServices(dir, db, clock);
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const create = (name: string) =>
    checkpoints.create('web', { name, leaveRunning: true, includeVolumes: false });
  const old = await create('migration-aaaa');
  const busy = await create('migration-bbbb');
  const mine = await create('before-upgrade');
  now.ms += 30 * 60_000;
  const recent = await create('migration-cccc');

  t.deepEqual(await migrations.sweep(), [], 'nothing is past the retention period yet');
  now.ms += 31 * 60_000;
  const { release } = checkpoints.retain(busy.id);
  t.deepEqual(await migrations.sweep(), [old.id]);
  release();
  t.deepEqual(await migrations.sweep(), [busy.id]);
  t.deepEqual(
    checkpoints
      .list()
      .map((c) => c.id)
      .sort(),
    [mine.id, recent.id].sort(),
    'other checkpoints and recent migration ones stay',
  );
});
