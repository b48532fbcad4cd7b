import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class InvalidCronError extends AppError {
  constructor(expression: string, reason: string) {
    super(
      ErrorCode.INVALID_CRON,
      400,
      `invalid cron expression "${expression}": ${reason}`,
      'use 5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, @daily, @weekly, @monthly',
    );
  }
}

export class ScheduleNotFoundError extends AppError {
  constructor(id: string) {
    super(
      ErrorCode.SCHEDULE_NOT_FOUND,
      404,
      `no schedule with id "${id}"`,
      'list schedules with GET /v1/schedules',
    );
  }
}

export class ScheduleRunInProgressError extends AppError {
  constructor(id: string) {
    super(
      ErrorCode.SCHEDULE_RUN_IN_PROGRESS,
      409,
      `schedule "${id}" is taking a snapshot right now`,
      'retry when that run has finished',
    );
  }
}
