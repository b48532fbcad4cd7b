import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { PromMetrics } from '../../src/adapters/metrics/prom-metrics.js';
import { openDatabase } from '../../src/adapters/store/database.js';
import { ErrorCode } from '../../src/domain/errors/index.js';
import { CriuError } from '../../src/domain/errors/index.js';
import { buildApp } from '../../src/http/app.js';
import { systemClock } from '../../src/services/ports/clock.js';
import { parseMetrics } from '../../harness/metrics-text.js';
import { fakeServices } from './fake-services.js';

const TOKEN = 'unit-test-token-0123456789';

async function setUp(
  t: { teardown(fn: () => Promise<void>): void },
  metricsPublic = false,
  again?: { dir: string },
) {
  const dir = again?.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'cryo-metrics-')));
  const db = openDatabase(path.join(dir, 'cryo.db'));
  const metrics = new PromMetrics({
    storedBytes: () => services.catalog.list().reduce((sum, c) => sum + c.sizeBytes, 0),
    checkpoints: () => services.catalog.ids().size,
    freeBytes: async () => 12345,
  });
  const services = await fakeServices(dir, db, systemClock, undefined, undefined, undefined, { metrics });
  const app = await buildApp({ ...services, token: TOKEN, logLevel: 'silent', metrics, metricsPublic });
  t.teardown(async () => {
    await app.close();
    db.close();
    if (!again) await rm(dir, { recursive: true, force: true });
  });
  const scrape = async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return { res, samples: parseMetrics(res.body) };
  };
  return { app, services, scrape, dir };
}

test('metrics move as operations happen: a checkpoint, a failed one, a restore and a scheduled run', async (t) => {
  const { services, scrape, dir } = await setUp(t);
  const { runtime, checkpoints, schedules } = services;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const before = (await scrape()).samples;
  t.is(before.get('cryo_checkpoints'), 0);
  t.is(before.get('cryo_data_free_bytes'), 12345);

  const taken = await checkpoints.create('web', { leaveRunning: true });
  runtime.failCheckpoint = new CriuError('dump failed', ['Error (criu/cr-dump.c:1): boom']);
  await t.throwsAsync(checkpoints.create('web', { leaveRunning: false }));
  runtime.failCheckpoint = undefined;
  await checkpoints.restore(taken.id, { name: 'web-copy', ports: 'free' });
  const schedule = await schedules.create({
    container: 'web',
    cron: '0 0 1 1 *',
    leaveRunning: true,
    application: false,
    retain: {},
    incremental: false,
    enabled: true,
  });
  const run = await schedules.runNow(schedule.id);
  t.is(run.outcome, 'succeeded');

  const { res, samples: after } = await scrape();
  t.is(res.statusCode, 200);
  t.regex(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
  t.is(
    after.get('cryo_operations_total{operation="checkpoint",outcome="success",code=""}'),
    2,
    'the taken one and the scheduled one',
  );
  t.is(
    after.get(
      `cryo_operations_total{operation="checkpoint",outcome="failure",code="${ErrorCode.CRIU_FAILED}"}`,
    ),
    1,
  );
  t.is(
    after.get(
      'cryo_operation_duration_seconds_count{operation="checkpoint",mode="leave-running",outcome="success"}',
    ),
    2,
  );
  t.is(
    after.get('cryo_operation_duration_seconds_count{operation="checkpoint",mode="stop",outcome="failure"}'),
    1,
  );
  t.is(
    after.get(
      'cryo_operation_duration_seconds_count{operation="restore",mode="new-container",outcome="success"}',
    ),
    1,
  );
  t.is(after.get('cryo_checkpoint_frozen_seconds_count'), 2, 'each leave-running dump reports its pause');
  t.is(after.get(`cryo_scheduled_runs_total{schedule="${schedule.id}",outcome="succeeded"}`), 1);
  const lastSuccess = after.get(`cryo_schedule_last_success_timestamp_seconds{schedule="${schedule.id}"}`)!;
  t.true(Math.abs(lastSuccess - Date.parse(run.endedAt!) / 1000) < 1);
  t.is(after.get('cryo_checkpoints'), 2);
  t.is(
    after.get('cryo_checkpoint_stored_bytes'),
    checkpoints.list().reduce((sum, c) => sum + c.sizeBytes, 0),
  );
  t.is(after.get('cryo_operations_in_flight{operation="checkpoint"}'), 0);
  t.true((after.get('process_resident_memory_bytes') ?? 0) > 0, "Node's process metrics are there");
  t.false(
    [...after.keys()].some((k) => k.includes(taken.id)),
    'no checkpoint id in any label',
  );

  // A restarted cryo knows when each schedule last succeeded, from the catalog.
  const restarted = await setUp(t, false, { dir });
  await restarted.services.schedules.start();
  await restarted.services.schedules.stop();
  const again = (await restarted.scrape()).samples;
  t.is(again.get(`cryo_schedule_last_success_timestamp_seconds{schedule="${schedule.id}"}`), lastSuccess);
  t.is(again.get(`cryo_scheduled_runs_total{schedule="${schedule.id}",outcome="succeeded"}`), undefined);
});

test('GET /metrics needs the token, unless CRYO_METRICS_PUBLIC made it public', async (t) => {
  const closed = await setUp(t);
  const refused = await closed.app.inject({ method: 'GET', url: '/metrics' });
  t.is(refused.statusCode, 401);
  t.is(refused.json().code, ErrorCode.UNAUTHORIZED);
  const open = await setUp(t, true);
  const scraped = await open.app.inject({ method: 'GET', url: '/metrics' });
  t.is(scraped.statusCode, 200);
  t.true(parseMetrics(scraped.body).has('cryo_checkpoints'));
});
