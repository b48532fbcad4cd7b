import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import type { Schedule, ScheduleRun } from '../../src/domain/schedule.js';
import { counterAtLeast, readCounter, sleep, type CounterReading } from '../../harness/containers.js';
import { eventually } from '../../harness/eventually.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { TestCryo } from '../../harness/cryo.js';
import { NODE_IMAGE } from '../../harness/prerequisites.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

const test = cryoSuite({ cryo: { scheduleGraceMs: 60_000 } });
const TICK_MS = 500;

interface Sample extends CounterReading {
  at: number;
}

/** Reads the counter every 100 ms until stopped; each reading is stamped with the time it was answered. */
function sampler(ref: string): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const reading = await readCounter(ref).catch(() => undefined);
      if (reading) samples.push({ ...reading, at: Date.now() });
      await sleep(100);
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

async function runsOf(cryo: TestCryo, id: string): Promise<ScheduleRun[]> {
  return (await cryo.api<{ runs: ScheduleRun[] }>('GET', `/v1/schedules/${id}/runs`)).body.runs;
}

async function waitForRuns(
  cryo: TestCryo,
  id: string,
  succeeded: number,
  timeoutMs = 60_000,
): Promise<ScheduleRun[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const runs = await runsOf(cryo, id);
    if (runs.filter((r) => r.outcome === 'succeeded').length >= succeeded) return runs;
    if (Date.now() > deadline) throw new Error(`only ${JSON.stringify(runs)} after ${timeoutMs} ms`);
    await sleep(250);
  }
}

test.serial(
  'a seconds-level schedule snapshots the running counter; each snapshot restores to a value seen around its run',
  async (t) => {
    const { cryo, containers } = t.context;
    const name = containers.uniqueName('sched');
    await containers.run({
      image: NODE_IMAGE,
      name,
      publish: 8080,
      env: { COUNTER_TICK_MS: String(TICK_MS) },
    });
    await counterAtLeast(name, 2);
    const watch = sampler(name);

    const created = await cryo.api<Schedule>('POST', '/v1/schedules', {
      container: name,
      cron: '*/3 * * * * *',
      retain: { last: 3 },
    });
    t.is(created.status, 201, JSON.stringify(created.body));
    t.true(created.body.leaveRunning, 'scheduled snapshots leave the container running by default');
    t.truthy(created.body.nextRunAt);
    const id = created.body.id;
    // Whatever fails below, the schedule does not outlive this test.
    t.teardown(() => cryo.api('DELETE', `/v1/schedules/${id}`).then(() => undefined));

    await waitForRuns(cryo, id, 2);
    await cryo.restart(); // cryo goes down and up in the middle of the schedule
    await waitForRuns(cryo, id, 5);
    // Disabled from here, so that no run prunes or adds while the kept snapshots are counted and restored (a
    // restore holds its checkpoint: a run's retention pass then keeps it, and a fourth stays until the next run).
    const disabled = await cryo.api<Schedule>('PATCH', `/v1/schedules/${id}`, { enabled: false });
    t.is(disabled.status, 200, JSON.stringify(disabled.body));
    const runs = await eventually(
      async () => {
        const all = await runsOf(cryo, id);
        return all.some((r) => r.outcome === 'running') ? undefined : all;
      },
      { what: 'the run under way to end' },
    );
    // Every run needs a counter sample taken after it ended.
    const lastEnd = Math.max(...runs.map((r) => Date.parse(r.endedAt ?? r.startedAt)));
    await eventually(() => (watch.samples.at(-1)?.at ?? 0) >= lastEnd, {
      what: 'a counter sample after the last run',
    });
    await watch.stop();

    const succeeded = runs.filter((r) => r.outcome === 'succeeded');
    t.true(
      succeeded.every((r) => typeof r.frozenMs === 'number' && r.frozenMs > 0),
      'each run records its frozen time',
    );
    t.true(
      succeeded.some((r) => Date.parse(r.startedAt) > Date.parse(succeeded[1]!.endedAt!)),
      'runs went on after the restart',
    );
    const state = await execa('docker', [
      'inspect',
      '--format',
      '{{.State.Running}} {{.State.Paused}}',
      name,
    ]);
    t.is(state.stdout.trim(), 'true false', 'the container kept running and is not paused');

    // Retention keeps the last 3 of this schedule's checkpoints.
    const listed = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`))
      .body.checkpoints;
    const kept = succeeded.filter((r) => listed.some((c) => c.id === r.checkpointId));
    t.is(listed.length, 3, JSON.stringify(listed.map((c) => c.name)));
    t.deepEqual(
      kept.map((r) => r.checkpointId),
      succeeded.slice(-3).map((r) => r.checkpointId),
    );
    t.true(succeeded.some((r) => (r.pruned ?? []).length > 0));

    const { samples } = watch;
    for (const run of kept) {
      const before = [...samples].reverse().find((s) => s.at <= Date.parse(run.startedAt));
      const after = samples.find((s) => s.at >= Date.parse(run.endedAt!));
      t.truthy(before && after, `samples around run ${run.id}`);
      const clone = containers.uniqueName('sclone');
      const restoreStarted = Date.now();
      const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${run.checkpointId}/restore`, {
        name: clone,
      });
      t.is(restored.status, 201, JSON.stringify(restored.body));
      const value = await readCounter(clone);
      const ticksSinceRestore = Math.ceil((Date.now() - restoreStarted) / TICK_MS) + 1;
      t.is(value.bootId, before!.bootId);
      t.true(value.count >= before!.count, `restored ${value.count} >= ${before!.count} seen before the run`);
      t.true(
        value.count <= after!.count + ticksSinceRestore,
        `restored ${value.count} <= ${after!.count} seen after the run (+${ticksSinceRestore} ticks since the restore)`,
      );
      await execa('docker', ['rm', '-f', clone]);
    }

    const kept2 = await cryo.api('DELETE', `/v1/schedules/${id}`);
    t.is(kept2.status, 204);
    t.is(
      (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)).body
        .checkpoints.length,
      3,
      'deleting a schedule keeps its checkpoints',
    );
    t.is((await cryo.api('GET', `/v1/schedules/${id}`)).status, 404);
  },
);

test.serial(
  'a stopped container pauses its schedule with a reason; it resumes when the container runs again',
  async (t) => {
    const { cryo, containers } = t.context;
    const name = containers.uniqueName('pause');
    await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
    await counterAtLeast(name, 1);
    const created = await cryo.api<Schedule>('POST', '/v1/schedules', {
      container: name,
      cron: '*/2 * * * * *',
    });
    t.is(created.status, 201);
    const id = created.body.id;
    await waitForRuns(cryo, id, 1);
    await execa('docker', ['stop', '-t', '1', name]);
    const deadline = Date.now() + 30_000;
    let schedule: Schedule;
    do {
      await sleep(500);
      schedule = (await cryo.api<Schedule>('GET', `/v1/schedules/${id}`)).body;
    } while (!schedule.paused && Date.now() < deadline);
    t.regex(schedule.paused?.reason ?? '', /is exited/);
    const pausedRuns = (await runsOf(cryo, id)).length;
    await sleep(5_000);
    t.is((await runsOf(cryo, id)).length, pausedRuns, 'no run every two seconds while paused');

    await execa('docker', ['start', name]);
    const runs = await waitForRuns(cryo, id, 2, 30_000);
    t.like(runs.at(-1), { outcome: 'succeeded' });
    t.is((await cryo.api<Schedule>('GET', `/v1/schedules/${id}`)).body.paused, undefined);

    const manual = await cryo.api<ScheduleRun>('POST', `/v1/schedules/${id}/run`);
    t.is(manual.status, 201, JSON.stringify(manual.body));
    t.like(manual.body, { outcome: 'succeeded', trigger: 'manual' });

    const removed = await cryo.api('DELETE', `/v1/schedules/${id}?deleteCheckpoints=true`);
    t.is(removed.status, 204);
    t.is(
      (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)).body
        .checkpoints.length,
      0,
    );
  },
);

test.serial('invalid cron, invalid time zone and an unknown container are refused', async (t) => {
  const { cryo } = t.context;
  const cron = await cryo.api<ErrorBody>('POST', '/v1/schedules', { container: 'x', cron: '61 * * * *' });
  t.is(cron.status, 400);
  t.is(cron.body.code, ErrorCode.INVALID_CRON);
  t.regex(cron.body.message, /minute/);
  const tz = await cryo.api<ErrorBody>('POST', '/v1/schedules', {
    container: 'x',
    cron: '@daily',
    timezone: 'Mars/Olympus',
  });
  t.is(tz.status, 400);
  t.regex(tz.body.message, /time zone/);
  const missing = await cryo.api<ErrorBody>('POST', '/v1/schedules', {
    container: 'no-such-container-cryo',
    cron: '@hourly',
  });
  t.is(missing.status, 404);
  t.is(missing.body.code, ErrorCode.CONTAINER_NOT_FOUND);
  t.deepEqual((await cryo.api<{ schedules: Schedule[] }>('GET', '/v1/schedules')).body.schedules, []);
});
