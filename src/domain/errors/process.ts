import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class ProcessNotFoundError extends AppError {
  constructor(pid: number) {
    super(
      ErrorCode.PROCESS_NOT_FOUND,
      404,
      `no process with pid ${pid}`,
      'give the pid of a running process (ps -e)',
    );
  }
}

export class ProcessRefusedError extends AppError {
  constructor(pid: number, reason: string) {
    super(
      ErrorCode.PROCESS_REFUSED,
      400,
      `pid ${pid} cannot be checkpointed: ${reason}`,
      'give the pid of a workload process tree',
    );
  }
}

export class ProcessRunningError extends AppError {
  constructor(pid: number) {
    super(
      ErrorCode.PROCESS_RUNNING,
      409,
      `pid ${pid} of the checkpoint still runs`,
      'CRIU restores the tree under its own pids: stop the original process first',
    );
  }
}

export class PreflightFailedError extends AppError {
  constructor(problems: { code: string; message: string }[]) {
    super(
      ErrorCode.PREFLIGHT_FAILED,
      409,
      `a dump would fail: ${problems.map((p) => p.code).join(', ')}`,
      'see details.problems for each reason and its fix, or pass force: true to try anyway',
      { problems },
    );
  }
}
