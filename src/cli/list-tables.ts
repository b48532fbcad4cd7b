import { heldBytes, type Checkpoint } from '../domain/checkpoint.js';
import type { Migration } from '../domain/migration.js';
import type { Schedule, ScheduleRun } from '../domain/schedule.js';

/**
 * The list commands' default output: the API's lists as tables, as `docker ps` and `podman ps` print theirs
 * (`--format json` gives the API's JSON). `now` is for tests.
 */
export const listTables = {
  checkpoints: (list: { checkpoints: Checkpoint[] }, now?: number) => checkpointTable(list.checkpoints, now),
  migrations: (list: { migrations: Migration[] }, now?: number) => migrationTable(list.migrations, now),
  schedules: (list: { schedules: Schedule[] }, now?: number) => scheduleTable(list.schedules, now),
  runs: (list: { runs: ScheduleRun[] }, now?: number) => runTable(list.runs, now),
};

/** Columns padded to their widest cell, three spaces apart, headers in capitals: as `docker ps` prints them. */
function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n') + '\n';
}

function checkpointTable(checkpoints: Checkpoint[], now = Date.now()): string {
  return renderTable(
    ['checkpoint id', 'name', 'source', 'created', 'size', 'mode'],
    checkpoints.map((c) => [
      c.id,
      c.name,
      c.container ? c.container.name : c.process ? `pid ${c.process.pid} (${c.process.comm})` : '',
      ago(c.createdAt, now),
      // A chain's level shows what it holds itself, and how deep it is.
      humanSize(heldBytes(c)),
      [
        c.leaveRunning ? 'running' : 'stopped',
        c.application ? 'operators' : '',
        c.chain?.parent !== undefined ? `level ${c.chain.depth}` : '',
      ]
        .filter(Boolean)
        .join(', '),
    ]),
  );
}

function migrationTable(migrations: Migration[], now = Date.now()): string {
  return renderTable(
    ['migration id', 'container', 'target', 'status', 'started', 'downtime', 'error'],
    migrations.map((m) => [
      m.id,
      m.container.name,
      m.target,
      m.status,
      ago(m.startedAt, now),
      m.downtimeMs === undefined ? '' : `${(m.downtimeMs / 1000).toFixed(2)}s`,
      m.error ? `${m.error.phase}: ${m.error.code}` : '',
    ]),
  );
}

function scheduleTable(schedules: Schedule[], now = Date.now()): string {
  return renderTable(
    ['schedule id', 'container', 'cron', 'next run', 'last run', 'retain'],
    schedules.map((s) => [
      s.id,
      s.container.name,
      `${s.cron}${s.timezone ? ` (${s.timezone})` : ''}`,
      s.paused ? `paused: ${s.paused.reason}` : s.nextRunAt ? until(s.nextRunAt, now) : '',
      s.lastRun ? `${s.lastRun.outcome}, ${ago(s.lastRun.startedAt, now)}` : '',
      Object.entries(s.retain)
        .filter(([, n]) => (n ?? 0) > 0)
        .map(([k, n]) => `${k}=${n}`)
        .join(' '),
    ]),
  );
}

function runTable(runs: ScheduleRun[], now = Date.now()): string {
  return renderTable(
    ['started', 'trigger', 'outcome', 'checkpoint id', 'frozen', 'error'],
    runs.map((r) => [
      ago(r.startedAt, now),
      r.trigger,
      r.outcome,
      r.checkpointId ?? '',
      r.frozenMs === undefined ? '' : `${(r.frozenMs / 1000).toFixed(2)}s`,
      r.error ?? '',
    ]),
  );
}

/** Decimal units, as Docker prints sizes. */
function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toPrecision(3).replace(/\.?0+$/, '')}${units[unit]}`;
}

function ago(iso: string, now: number): string {
  return `${duration(now - Date.parse(iso))} ago`;
}

function until(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  return ms <= 0 ? 'due' : `in ${duration(ms)}`;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'}`;
  return `${Math.round(h / 24)} days`;
}
