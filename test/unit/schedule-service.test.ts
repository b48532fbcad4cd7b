import { mkdtemp, rm } from 'node:fs/promises';
import { TEST_HOST } from './fakes.js';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { CronerCron } from '../../src/adapters/cron/croner-cron.js';
import { ContentImageChain } from '../../src/adapters/chain/content-image-chain.js';
import { openDatabase, type Db } from '../../src/adapters/store/database.js';
import { FsImageStore } from '../../src/adapters/store/fs-image-store.js';
import { SqliteCheckpointCatalog } from '../../src/adapters/store/sqlite-checkpoint-catalog.js';
import { SqliteScheduleStore } from '../../src/adapters/store/sqlite-schedule-store.js';
import { AppError, ErrorCode } from '../../src/domain/errors/index.js';
import { CreateScheduleBodySchema, type CreateScheduleBody } from '../../src/domain/schedule.js';
import { CheckpointService } from '../../src/services/checkpoint/checkpoint-service.js';
import { ScheduleService } from '../../src/services/schedule/schedule-service.js';
import { FakeEngine, FakeRootfs, FakeRuntime } from './fakes.js';

const CONTAINER = 'c'.repeat(64);
const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);

interface Ctx {
  dir: string;
  db: Db;
  now: { ms: number };
  runtime: FakeRuntime;
  checkpoints: CheckpointService;
  make: (graceMs?: number) => ScheduleService;
}
const test = anyTest as TestFn<Ctx>;

test.beforeEach(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sched-'));
  const db = openDatabase(path.join(dir, 'cryo.db'));
  const now = { ms: T0 };
  const clock = { now: () => now.ms };
  const runtime = new FakeRuntime();
  runtime.add({ id: CONTAINER, name: 'web' });
  const store = new FsImageStore(dir);
  await store.init();
  const checkpoints = new CheckpointService({
    host: TEST_HOST,
    runtime,
    engine: new FakeEngine(),
    catalog: new SqliteCheckpointCatalog(db),
    store,
    rootfs: new FakeRootfs(),
    clock,
    // Schedules are incremental: levels of fake images (no pagemaps), linked and rebased as real ones are.
    chain: new ContentImageChain(),
  });
  const make = (graceMs = 60_000) =>
    new ScheduleService({
      store: new SqliteScheduleStore(db),
      checkpoints,
      runtime,
      cron: new CronerCron(),
      clock,
      catchUpGraceMs: graceMs,
    });
  t.context = { dir, db, now, runtime, checkpoints, make };
});

test.afterEach.always(async (t) => {
  t.context.db.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

const body = (extra: Partial<CreateScheduleBody> = {}): CreateScheduleBody =>
  CreateScheduleBodySchema.parse({ container: 'web', cron: '*/10 * * * * *', ...extra });

async function advance(t: { context: Ctx }, service: ScheduleService, ms: number): Promise<void> {
  t.context.now.ms += ms;
  await service.runDue();
  await service.idle();
}

test('a due schedule takes a leave-running snapshot and computes its next run', async (t) => {
  const service = t.context.make();
  const s = await service.create(body());
  t.is(s.nextRunAt, new Date(T0 + 10_000).toISOString());
  t.is(s.container.id, CONTAINER);
  await advance(t, service, 5_000);
  t.is(service.runs(s.id).length, 0, 'not due yet');
  await advance(t, service, 5_000);
  const runs = service.runs(s.id);
  t.is(runs.length, 1);
  t.like(runs[0], { outcome: 'succeeded', trigger: 'cron' });
  t.truthy(runs[0]?.checkpointId);
  t.is(typeof runs[0]?.frozenMs, 'number');
  t.true(t.context.checkpoints.get(runs[0]!.checkpointId!).leaveRunning);
  const after = service.get(s.id);
  t.is(after.nextRunAt, new Date(T0 + 20_000).toISOString());
  t.is(after.lastRun?.id, runs[0]?.id);
});

test('a run that finds the previous one still going is skipped and recorded', async (t) => {
  const service = t.context.make();
  const s = await service.create(body());
  let open!: () => void;
  t.context.runtime.checkpointGate = new Promise((resolve) => (open = resolve));
  t.context.now.ms += 10_000;
  await service.runDue();
  t.context.now.ms += 10_000;
  await service.runDue();
  await t.throwsAsync(service.runNow(s.id), { message: /taking a snapshot right now/ });
  open();
  await service.idle();
  const runs = service.runs(s.id);
  t.deepEqual(runs.map((r) => r.outcome).sort(), ['skipped', 'succeeded']);
  t.regex(runs.find((r) => r.outcome === 'skipped')?.error ?? '', /still in progress/);
});

test('runs missed while cryo was down are caught up once, and only within the grace period', async (t) => {
  const first = t.context.make(60_000);
  const s = await first.create(body({ cron: '* * * * *' }));
  // cryo is down for 5 minutes: 5 runs missed, the first one 4 minutes ago, within the 10-minute grace.
  t.context.now.ms += 5 * 60_000;
  const restarted = t.context.make(10 * 60_000);
  await restarted.catchUp();
  await restarted.idle();
  let runs = restarted.runs(s.id);
  t.is(runs.length, 1, 'once, not once per missed run');
  t.like(runs[0], { outcome: 'succeeded', trigger: 'catch-up' });
  t.true(Date.parse(restarted.get(s.id).nextRunAt!) > t.context.now.ms);

  // Down again for an hour, with a one-minute grace: nothing is taken, the miss is recorded.
  t.context.now.ms += 60 * 60_000;
  const late = t.context.make(60_000);
  await late.catchUp();
  await late.idle();
  runs = late.runs(s.id);
  t.is(runs.length, 2);
  t.like(runs[1], { outcome: 'skipped', trigger: 'catch-up' });
  t.regex(runs[1]?.error ?? '', /outside the catch-up grace period/);
  t.is(runs[1]?.checkpointId, undefined);
});

test('a missing container pauses the schedule with a reason, and it resumes when the container runs again', async (t) => {
  const service = t.context.make();
  const s = await service.create(body());
  t.context.runtime.containers.delete(CONTAINER);
  await advance(t, service, 10_000);
  let current = service.get(s.id);
  t.regex(current.paused?.reason ?? '', /was removed/);
  t.like(service.runs(s.id)[0], { outcome: 'skipped' });
  for (let i = 0; i < 5; i++) await advance(t, service, 10_000);
  t.is(service.runs(s.id).length, 1, 'a paused schedule does not fail every time');

  // The container comes back under the same name (a new id), and runs.
  t.context.runtime.add({ id: 'd'.repeat(64), name: 'web' });
  await advance(t, service, 10_000);
  current = service.get(s.id);
  t.is(current.paused, undefined);
  t.is(current.container.id, 'd'.repeat(64));
  t.like(service.runs(s.id).at(-1), { outcome: 'succeeded' });

  t.context.runtime.add({ id: 'd'.repeat(64), name: 'web', running: false, state: 'exited' });
  await advance(t, service, 10_000);
  t.regex(service.get(s.id).paused?.reason ?? '', /is exited/);
});

test('retention runs after each snapshot, keeps the newest and never deletes one in use', async (t) => {
  const service = t.context.make();
  const s = await service.create(body({ retain: { last: 2 } }));
  for (let i = 0; i < 4; i++) await advance(t, service, 10_000);
  const ids = service.runs(s.id).map((r) => r.checkpointId!);
  t.is(ids.length, 4);
  t.deepEqual(
    t.context.checkpoints.list().map((c) => c.id),
    ids.slice(2),
    'the two newest are kept',
  );
  t.deepEqual(service.runs(s.id)[2]?.pruned, [ids[0]]);

  // The oldest kept one is being exported: the next retention must leave it alone.
  const { release } = t.context.checkpoints.retain(ids[2]!);
  await advance(t, service, 10_000);
  t.true(
    t.context.checkpoints.list().some((c) => c.id === ids[2]),
    'in use, so kept',
  );
  release();
  await advance(t, service, 10_000);
  t.false(t.context.checkpoints.list().some((c) => c.id === ids[2]));
  t.is(t.context.checkpoints.list().length, 2);
});

test('maxTotalBytes drops the oldest snapshots until the rest fit, those the counts do not keep first, never the newest', async (t) => {
  const service = t.context.make();
  // Learn what one snapshot of this workload takes on disk.
  const probe = await service.create(body());
  await advance(t, service, 10_000);
  const size = t.context.checkpoints.get(service.runs(probe.id)[0]!.checkpointId!).sizeBytes;
  await service.remove(probe.id, true);

  // `last: 3` keeps three; room for two and a half: the oldest of the three goes too.
  const s = await service.create(body({ retain: { last: 3, maxTotalBytes: Math.floor(size * 2.5) } }));
  for (let i = 0; i < 5; i++) await advance(t, service, 10_000);
  const ids = service.runs(s.id).map((r) => r.checkpointId!);
  t.deepEqual(
    t.context.checkpoints.list().map((c) => c.id),
    ids.slice(3),
  );
  const last = service.get(s.id).lastRun!;
  t.like(last.retention, { storedBytes: 2 * size, maxTotalBytes: Math.floor(size * 2.5), overLimit: false });

  // Less room than the newest takes: it stays anyway, and the run says the limit is not met.
  service.patch(s.id, { retain: { maxTotalBytes: 1 } });
  await advance(t, service, 10_000);
  const newest = service.get(s.id).lastRun!;
  t.deepEqual(
    t.context.checkpoints.list().map((c) => c.id),
    [newest.checkpointId],
  );
  t.like(newest.retention, { storedBytes: size, overLimit: true });
  t.regex(newest.retention?.reason ?? '', /newest checkpoint alone/);
});

test('bad input: invalid cron, invalid time zone, unknown container', async (t) => {
  const service = t.context.make();
  for (const cron of ['61 * * * *', 'not cron', '* * *', '@sometimes']) {
    const err = await t.throwsAsync(service.create(body({ cron })));
    t.is((err as AppError).code, ErrorCode.INVALID_CRON, cron);
    t.is((err as AppError).statusCode, 400);
  }
  t.false(
    CreateScheduleBodySchema.safeParse({ container: 'web', cron: '@daily', timezone: 'Mars/Olympus' })
      .success,
  );
  t.true(
    CreateScheduleBodySchema.safeParse({ container: 'web', cron: '@daily', timezone: 'Europe/Berlin' })
      .success,
  );
  const missing = await t.throwsAsync(service.create(body({ container: 'ghost' })));
  t.is((missing as AppError).code, ErrorCode.CONTAINER_NOT_FOUND);
  t.deepEqual(service.list(), []);
});

test('schedules survive a restart and go on; deleting one keeps its checkpoints unless asked', async (t) => {
  const first = t.context.make();
  const keepOne = await first.create(body());
  const dropOne = await first.create(body({ cron: '*/20 * * * * *' }));
  await advance(t, first, 20_000);
  const second = t.context.make();
  t.deepEqual(second.get(keepOne.id).nextRunAt, first.get(keepOne.id).nextRunAt);
  await advance(t, second, 10_000);
  t.is(second.runs(keepOne.id).length, 2, 'late slots coalesce into one run; the restarted service goes on');
  const dropped = second.runs(dropOne.id).map((r) => r.checkpointId);
  t.is(dropped.length, 1);

  await second.remove(keepOne.id, false);
  await second.remove(dropOne.id, true);
  const left = t.context.checkpoints.list().map((c) => c.id);
  t.is(left.length, 2, "the kept schedule's two checkpoints");
  t.false(left.includes(dropped[0]!));
  t.deepEqual(second.list(), []);
});

test('patching the cron or disabling takes effect on the next run', async (t) => {
  const service = t.context.make();
  const s = await service.create(body());
  const patched = service.patch(s.id, { cron: '@hourly', timezone: 'Europe/Berlin' });
  t.is(patched.nextRunAt, new Date(Date.UTC(2026, 10, 21, 13, 0, 0)).toISOString());
  service.patch(s.id, { enabled: false });
  await advance(t, service, 2 * 3_600_000);
  t.is(service.runs(s.id).length, 0);
  t.throws(() => service.patch(s.id, { cron: 'bad' }), { message: /invalid cron/ });
});

test('an engine that stops answering fails the run, recorded with its error; cryo and the timer go on', async (t) => {
  const service = t.context.make();
  const s = await service.create(body());
  const gone = Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' });
  const inspect = t.context.runtime.inspect.bind(t.context.runtime);
  t.context.runtime.inspect = () => Promise.reject(gone);
  // Through the timer, as in the server: nothing awaits the run, so a rejection would end the process.
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => rejections.push(err);
  process.on('unhandledRejection', onRejection);
  try {
    await service.start();
    t.context.now.ms += 10_000;
    await service.runDue();
    await service.idle();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const failed = service.runs(s.id);
    t.is(failed.length, 1);
    t.like(failed[0], { outcome: 'failed', trigger: 'cron' });
    t.regex(failed[0]?.error ?? '', /connect ENOENT/);
    t.truthy(failed[0]?.endedAt, 'the run ended; it does not stay running');
    t.deepEqual(rejections, []);
    // The engine is back: the next run is on time and succeeds.
    t.context.runtime.inspect = inspect;
    t.context.now.ms += 10_000;
    await service.runDue();
    await service.idle();
    t.deepEqual(
      service.runs(s.id).map((r) => r.outcome),
      ['failed', 'succeeded'],
    );
  } finally {
    process.off('unhandledRejection', onRejection);
    await service.stop();
  }
});
