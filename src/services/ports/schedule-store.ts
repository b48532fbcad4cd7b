import type { Schedule, ScheduleRun } from '../../domain/schedule.js';

/** Durable schedules and their runs. */
export interface ScheduleStore {
  save(schedule: Schedule): void;
  get(id: string): Schedule | undefined;
  list(): Schedule[];
  remove(id: string): void;
  saveRun(run: ScheduleRun): void;
  runs(scheduleId: string): ScheduleRun[];
  /** Ids of the checkpoints this schedule's runs made. */
  checkpointIds(scheduleId: string): string[];
}
