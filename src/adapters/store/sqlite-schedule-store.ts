import { ScheduleRunSchema, ScheduleSchema, type Schedule, type ScheduleRun } from '../../domain/schedule.js';
import type { ScheduleStore } from '../../services/ports/schedule-store.js';
import type { Db } from './database.js';

interface Row {
  body: string;
}

export class SqliteScheduleStore implements ScheduleStore {
  constructor(private readonly db: Db) {}

  save(schedule: Schedule): void {
    this.db
      .prepare(
        'INSERT INTO schedules (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
      )
      .run(schedule.id, JSON.stringify(schedule));
  }

  get(id: string): Schedule | undefined {
    const row = this.db.prepare('SELECT body FROM schedules WHERE id = ?').get(id) as Row | undefined;
    return row ? ScheduleSchema.parse(JSON.parse(row.body)) : undefined;
  }

  list(): Schedule[] {
    return (this.db.prepare('SELECT body FROM schedules ORDER BY id').all() as Row[]).map((r) =>
      ScheduleSchema.parse(JSON.parse(r.body)),
    );
  }

  remove(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM schedule_runs WHERE schedule_id = ?').run(id);
      this.db.prepare('DELETE FROM schedules WHERE id = ?').run(id);
    })();
  }

  saveRun(run: ScheduleRun): void {
    this.db
      .prepare(
        `INSERT INTO schedule_runs (id, schedule_id, started_at, checkpoint_id, body) VALUES (@id, @scheduleId, @startedAt, @checkpointId, @body)
         ON CONFLICT (id) DO UPDATE SET checkpoint_id = excluded.checkpoint_id, body = excluded.body`,
      )
      .run({
        id: run.id,
        scheduleId: run.scheduleId,
        startedAt: run.startedAt,
        checkpointId: run.checkpointId ?? null,
        body: JSON.stringify(run),
      });
  }

  runs(scheduleId: string): ScheduleRun[] {
    return (
      this.db
        .prepare('SELECT body FROM schedule_runs WHERE schedule_id = ? ORDER BY started_at, id')
        .all(scheduleId) as Row[]
    ).map((r) => ScheduleRunSchema.parse(JSON.parse(r.body)));
  }

  checkpointIds(scheduleId: string): string[] {
    const rows = this.db
      .prepare(
        'SELECT checkpoint_id FROM schedule_runs WHERE schedule_id = ? AND checkpoint_id IS NOT NULL ORDER BY started_at, id',
      )
      .all(scheduleId) as { checkpoint_id: string }[];
    return rows.map((r) => r.checkpoint_id);
  }
}
