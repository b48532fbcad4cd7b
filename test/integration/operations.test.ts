import type { Checkpoint } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import { ErrorCode } from '../../src/domain/errors/index.js';
import type { Schedule, ScheduleRun } from '../../src/domain/schedule.js';
import { counterAtLeast, readCounter } from '../../harness/containers.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { parseMetrics } from '../../harness/metrics-text.js';
import { TestCryo } from '../../harness/cryo.js';
import { NODE_IMAGE } from '../../harness/prerequisites.js';

// What an operator runs cryo with for weeks: metrics that a scrape parses, size-bound retention, a disk floor.
const test = cryoSuite();

async function scrape(cryo: TestCryo): Promise<Map<string, number>> {
  const res = await fetch(`${cryo.url}/metrics`, { headers: { authorization: `Bearer ${cryo.token}` } });
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return parseMetrics(await res.text());
}

const delta = (before: Map<string, number>, after: Map<string, number>, key: string) =>
  (after.get(key) ?? 0) - (before.get(key) ?? 0);

test.serial(
  'a checkpoint, a refused one and scheduled runs move their metrics; size-bound retention keeps the newest',
  async (t) => {
    const { cryo, containers } = t.context;
    const name = containers.uniqueName('ops');
    await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
    await counterAtLeast(name, 2);
    const before = await scrape(cryo);

    const taken = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
      leaveRunning: true,
    });
    t.is(taken.status, 201, JSON.stringify(taken.body));
    const refused = await cryo.api<ErrorBody>(
      'POST',
      '/v1/containers/no-such-container-here/checkpoints',
      {},
    );
    t.is(refused.status, 404);

    // Room for one snapshot and a half: each run leaves only the newest.
    const schedule = await cryo.api<Schedule>('POST', '/v1/schedules', {
      container: name,
      cron: '0 0 1 1 *',
      retain: { maxTotalBytes: Math.floor(taken.body.sizeBytes * 1.5) },
      // Full snapshots, each about the size of the one taken by hand: the limit then holds one of them.
      incremental: false,
    });
    t.is(schedule.status, 201, JSON.stringify(schedule.body));
    const runs: ScheduleRun[] = [];
    for (let i = 0; i < 3; i++)
      runs.push((await cryo.api<ScheduleRun>('POST', `/v1/schedules/${schedule.body.id}/run`)).body);
    t.deepEqual(
      runs.map((r) => r.outcome),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    const { checkpoints } = (
      await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)
    ).body;
    t.deepEqual(
      checkpoints.map((c) => c.id).sort(),
      [taken.body.id, runs[2]!.checkpointId!].sort(),
      "the schedule's newest is kept; the checkpoint taken by hand is not the schedule's to drop",
    );
    t.like(runs[2]!.retention, { overLimit: false });
    t.true(runs[2]!.retention!.storedBytes <= Math.floor(taken.body.sizeBytes * 1.5));

    const after = await scrape(cryo);
    const ok = 'cryo_operations_total{operation="checkpoint",outcome="success",code=""}';
    t.is(delta(before, after, ok), 4, 'one by hand, three scheduled');
    t.is(
      delta(
        before,
        after,
        `cryo_operations_total{operation="checkpoint",outcome="failure",code="${ErrorCode.CONTAINER_NOT_FOUND}"}`,
      ),
      1,
    );
    t.is(
      delta(before, after, `cryo_scheduled_runs_total{schedule="${schedule.body.id}",outcome="succeeded"}`),
      3,
    );
    t.is(delta(before, after, 'cryo_checkpoint_frozen_seconds_count'), 4);
    const lastSuccess = after.get(
      `cryo_schedule_last_success_timestamp_seconds{schedule="${schedule.body.id}"}`,
    );
    t.true(Math.abs((lastSuccess ?? 0) - Date.parse(runs[2]!.endedAt!) / 1000) < 1);
    t.is(after.get('cryo_checkpoints'), 2);
    t.true((after.get('cryo_data_free_bytes') ?? 0) > 0);
  },
);

test.serial(
  'the disk guard refuses a checkpoint below its floor, and the container runs on untouched',
  async (t) => {
    const { containers } = t.context;
    // The whole file system as the floor (CRYO_MIN_FREE_PERCENT=100): nothing fits, no disk is filled.
    const guarded = await TestCryo.start({ minFreePercent: 100 });
    t.teardown(() => guarded.stop());
    const name = containers.uniqueName('guarded');
    await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
    const before = await counterAtLeast(name, 2);
    const refused = await guarded.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {});
    t.is(refused.status, 507);
    t.is(refused.body.code, ErrorCode.INSUFFICIENT_SPACE);
    t.regex(refused.body.message, /must stay free/);
    t.truthy(refused.body.hint);
    const after = await counterAtLeast(name, before.count + 2);
    t.is(after.bootId, before.bootId, 'the same process counts on: it was never stopped');
    t.is((await readCounter(name)).bootId, before.bootId);
    const { checkpoints } = (await guarded.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body;
    t.deepEqual(checkpoints, []);
  },
);
