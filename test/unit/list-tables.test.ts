import test from 'ava';
import { listTables } from '../../src/cli/list-tables.js';
import type { Checkpoint } from '../../src/domain/checkpoint.js';
import type { Migration } from '../../src/domain/migration.js';
import type { Schedule } from '../../src/domain/schedule.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');

const checkpoint = (over: Partial<Checkpoint>): Checkpoint => ({
  id: '000mwqii0as2ccolnyz48',
  name: 'nightly',
  kind: 'container',
  container: { id: 'c'.repeat(64), name: 'counter', image: 'cryo-fixture/node:1' },
  createdAt: '2026-11-22T11:58:00Z',
  leaveRunning: true,
  sizeBytes: 549_123_456,
  stats: { dumpMs: 300, totalMs: 900 },
  status: 'complete',
  ...over,
});

test('checkpoints: one aligned row each, sizes and ages as docker prints them', (t) => {
  const text = listTables.checkpoints(
    {
      checkpoints: [
        checkpoint({}),
        checkpoint({
          id: '000mwqjm2c134e7r9q8hi',
          name: 'p1',
          kind: 'process',
          container: undefined,
          process: { pid: 4242, comm: 'sleep', cmdline: ['sleep', '600'] },
          createdAt: '2026-11-20T12:00:00Z',
          leaveRunning: false,
          sizeBytes: 812,
        }),
      ],
    },
    NOW,
  );
  t.is(
    text,
    [
      'CHECKPOINT ID           NAME      SOURCE             CREATED         SIZE    MODE',
      '000mwqii0as2ccolnyz48   nightly   counter            2 minutes ago   549MB   running',
      '000mwqjm2c134e7r9q8hi   p1        pid 4242 (sleep)   2 days ago      812B    stopped',
      '',
    ].join('\n'),
  );
});

test('an empty list prints its header only', (t) => {
  t.is(
    listTables.migrations({ migrations: [] }, NOW).split('\n')[0],
    'MIGRATION ID   CONTAINER   TARGET   STATUS   STARTED   DOWNTIME   ERROR',
  );
  t.is(listTables.runs({ runs: [] }, NOW), 'STARTED   TRIGGER   OUTCOME   CHECKPOINT ID   FROZEN   ERROR\n');
});

test('migrations, schedules and runs show what went wrong and what comes next', (t) => {
  const migration: Migration = {
    id: 'm1',
    container: { id: 'c', name: 'counter' },
    target: 'http://host-b:7070',
    status: 'rolled_back',
    phases: [],
    startedAt: '2026-11-22T11:00:00Z',
    bytesSent: 0,
    error: { phase: 'restore', code: ErrorCode.IMAGE_NOT_FOUND, message: 'no image' },
  };
  t.regex(
    listTables.migrations({ migrations: [migration] }, NOW),
    /m1 +counter +http:\/\/host-b:7070 +rolled_back +1 hour ago +restore: IMAGE_NOT_FOUND\n$/,
  );
  const schedule: Schedule = {
    id: 's1',
    container: { id: 'c', name: 'counter' },
    cron: '*/5 * * * *',
    leaveRunning: true,
    retain: { last: 3, hourly: 0, daily: 7, weekly: 0, monthly: 0 },
    enabled: true,
    createdAt: '2026-11-22T10:00:00Z',
    nextRunAt: '2026-11-22T12:05:00Z',
    lastRun: {
      id: 'r1',
      scheduleId: 's1',
      startedAt: '2026-11-22T11:55:00Z',
      outcome: 'failed',
      trigger: 'cron',
      error: 'CRIU_FAILED: dump failed',
    },
  };
  t.regex(
    listTables.schedules({ schedules: [schedule] }, NOW),
    /s1 +counter +\*\/5 \* \* \* \* +in 5 minutes +failed, 5 minutes ago +last=3 daily=7\n$/,
  );
  t.regex(
    listTables.runs({ runs: [{ ...schedule.lastRun!, frozenMs: 310 }] }, NOW),
    /5 minutes ago +cron +failed +0\.31s +CRIU_FAILED: dump failed\n$/,
  );
});

test("checkpoints: a chain's level shows its own bytes and its depth", (t) => {
  const text = listTables.checkpoints(
    {
      checkpoints: [
        checkpoint({
          name: 'later',
          sizeBytes: 1_000_000_000,
          chain: { parent: '000mwqii0as2ccolnyz47', depth: 3, ownBytes: 26_000_000 },
        }),
      ],
    },
    NOW,
  );
  t.regex(text, /later .* 26MB +running, level 3\n$/);
});
