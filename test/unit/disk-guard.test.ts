import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { openDatabase } from '../../src/adapters/store/database.js';
import { AppError, ErrorCode } from '../../src/domain/errors/index.js';
import { systemClock } from '../../src/services/ports/clock.js';
import { fakeServices } from './fake-services.js';

test('an import whose announced entries would go below the floor is refused before anything is written', async (t) => {
  const dirs = await Promise.all([0, 1].map(() => mkdtemp(path.join(os.tmpdir(), 'cryo-guard-'))));
  const dbs = dirs.map((d) => openDatabase(path.join(d, 'cryo.db')));
  t.teardown(async () => {
    for (const db of dbs) db.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const source = await fakeServices(dirs[0]!, dbs[0]!, systemClock);
  source.runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const checkpoint = await source.checkpoints.create('web', { leaveRunning: true });
  const exported = async () => (await source.archives.export(checkpoint.id, 'none')).stream;

  // The whole file system as the floor: the archive's entries, announced in cryo.json, cannot fit.
  const guarded = await fakeServices(dirs[1]!, dbs[1]!, systemClock, undefined, undefined, undefined, {
    diskFloor: { minFreeBytes: 0, minFreePercent: 100 },
  });
  const error = await guarded.archives.import(await exported()).then(
    () => undefined,
    (e: unknown) => e as AppError,
  );
  t.is(error?.code, ErrorCode.INSUFFICIENT_SPACE);
  t.is(error?.statusCode, 507);
  t.deepEqual(guarded.checkpoints.list(), [], 'nothing catalogued');
  t.deepEqual(await readdir(path.join(dirs[1]!, 'staging')), [], 'nothing left in staging');
  const report = await guarded.host.report();
  t.true(report.minFreeBytes! > report.freeBytes, 'the host report names the floor, for a migration source');

  const open = await fakeServices(dirs[1]!, dbs[1]!, systemClock);
  const imported = await open.archives.import(await exported());
  t.is(imported.name, checkpoint.name, 'without the floor the same archive imports');
});
