import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

/** A wait that has a deadline (a command, Docker, a peer, a request body) passed it. */
export class DeadlineExceededError extends AppError {
  constructor(what: string, ms: number, setting: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.DEADLINE_EXCEEDED,
      504,
      `${what} did not finish within ${seconds(ms)}`,
      `see why it hangs (a stopped process, a paused dockerd, a dropped link); ${setting} sets the deadline`,
      { what, deadlineMs: ms, setting },
      options,
    );
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
