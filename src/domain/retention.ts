import type { Retention } from './schedule.js';

export interface Snapshot {
  id: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/**
 * Which snapshots a grandfather-father-son policy keeps: the union of the newest `last`, and, per bucket kind,
 * the newest snapshot of each of the newest N buckets that hold one (as restic's `forget` does). Buckets are
 * calendar hours, days, ISO weeks and months in `timezone`. An empty policy keeps everything.
 */
export function retained(snapshots: Snapshot[], policy: Retention, timezone = 'UTC'): Set<string> {
  const newestFirst = [...snapshots].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  const { last, hourly, daily, weekly, monthly } = policy;
  if ([last, hourly, daily, weekly, monthly].every((n) => n === undefined)) {
    return new Set(newestFirst.map((s) => s.id));
  }
  const keep = new Set<string>();
  for (const s of newestFirst.slice(0, last ?? 0)) keep.add(s.id);
  const parts = calendar(timezone);
  const byBucket = (count: number | undefined, key: (d: CalendarParts) => string) => {
    if (!count) return;
    const seen = new Set<string>();
    for (const s of newestFirst) {
      const k = key(parts(s.createdAt));
      if (seen.has(k)) continue;
      seen.add(k);
      keep.add(s.id);
      if (seen.size === count) break;
    }
  };
  byBucket(hourly, (d) => `${d.year}-${d.month}-${d.day}T${d.hour}`);
  byBucket(daily, (d) => `${d.year}-${d.month}-${d.day}`);
  byBucket(weekly, (d) => isoWeek(d));
  byBucket(monthly, (d) => `${d.year}-${d.month}`);
  return keep;
}

export interface CalendarParts {
  year: number;
  month: number;
  day: number;
  hour: number;
}

function calendar(timezone: string): (ms: number) => CalendarParts {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
  });
  return (ms) => {
    const out: Record<string, number> = {};
    for (const p of fmt.formatToParts(new Date(ms))) if (p.type !== 'literal') out[p.type] = Number(p.value);
    return { year: out.year ?? 0, month: out.month ?? 0, day: out.day ?? 0, hour: out.hour ?? 0 };
  };
}

/** The ISO 8601 week ("2026-W47") of a calendar day. */
export function isoWeek(d: CalendarParts): string {
  const date = new Date(Date.UTC(d.year, d.month - 1, d.day));
  const weekday = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
