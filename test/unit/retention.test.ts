import test from 'ava';
import { isoWeek, retained, type Snapshot } from '../../src/domain/retention.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** An independent reference for UTC: bucket by integer division of epoch time. */
function reference(
  snapshots: Snapshot[],
  policy: { last?: number; hourly?: number; daily?: number; weekly?: number; monthly?: number },
): Set<string> {
  const sorted = [...snapshots].sort((a, b) => b.createdAt - a.createdAt);
  const keep = new Set(sorted.slice(0, policy.last ?? 0).map((s) => s.id));
  const take = (n: number | undefined, bucket: (ms: number) => number) => {
    const newestPerBucket = new Map<number, Snapshot>();
    for (const s of sorted)
      if (!newestPerBucket.has(bucket(s.createdAt))) newestPerBucket.set(bucket(s.createdAt), s);
    [...newestPerBucket.entries()]
      .sort((a, b) => b[0] - a[0])
      .slice(0, n ?? 0)
      .forEach(([, s]) => keep.add(s.id));
  };
  take(policy.hourly, (ms) => Math.floor(ms / HOUR));
  take(policy.daily, (ms) => Math.floor(ms / DAY));
  // 1970-01-01 was a Thursday; ISO weeks start on Monday.
  take(policy.weekly, (ms) => Math.floor((Math.floor(ms / DAY) + 3) / 7));
  take(policy.monthly, (ms) => new Date(ms).getUTCFullYear() * 12 + new Date(ms).getUTCMonth());
  return keep;
}

test('retention keeps exactly the expected set on a timeline of hundreds of runs', (t) => {
  const start = Date.UTC(2026, 0, 28, 5, 17); // crosses a month end and several ISO weeks
  const snapshots: Snapshot[] = [];
  for (let i = 0; i < 800; i++)
    snapshots.push({
      id: `s${String(i).padStart(4, '0')}`,
      createdAt: start + i * 37 * 60_000 + (i % 7) * 1000,
    });
  const policies = [
    { last: 3, hourly: 5, daily: 4, weekly: 2, monthly: 2 },
    { hourly: 24 },
    { daily: 7, weekly: 4 },
    { last: 1 },
    { monthly: 12 },
    { last: 10, daily: 30 },
  ];
  for (const policy of policies) {
    const got = retained(snapshots, policy);
    t.deepEqual([...got].sort(), [...reference(snapshots, policy)].sort(), JSON.stringify(policy));
  }
  t.is(retained(snapshots, { last: 3 }).size, 3);
  t.is(retained(snapshots, {}).size, 800, 'an empty policy keeps everything');
  const mixed = retained(snapshots, { last: 3, hourly: 5, daily: 4, weekly: 2, monthly: 2 });
  t.true(mixed.has('s0799') && mixed.has('s0798') && mixed.has('s0797'), 'the newest ones are kept');
  t.true(mixed.size < 3 + 5 + 4 + 2 + 2 + 1, 'buckets overlap: a union, not a sum');
});

test('buckets follow the schedule time zone', (t) => {
  // 22:30 and 23:30 UTC on 2026-03-10 are 23:30 on the 10th and 00:30 on the 11th in Berlin (UTC+1).
  const a = { id: 'a', createdAt: Date.UTC(2026, 2, 10, 22, 30) };
  const b = { id: 'b', createdAt: Date.UTC(2026, 2, 10, 23, 30) };
  t.deepEqual([...retained([a, b], { daily: 2 }, 'UTC')].sort(), ['b'], 'one UTC day: only its newest');
  t.deepEqual([...retained([a, b], { daily: 2 }, 'Europe/Berlin')].sort(), ['a', 'b'], 'two Berlin days');
});

test('ISO weeks', (t) => {
  t.is(isoWeek({ year: 2026, month: 1, day: 1, hour: 0 }), '2026-W01');
  t.is(isoWeek({ year: 2027, month: 1, day: 1, hour: 0 }), '2026-W53');
  t.is(isoWeek({ year: 2026, month: 11, day: 21, hour: 0 }), '2026-W47');
});
