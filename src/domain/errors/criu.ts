import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class CriuUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.CRIU_UNAVAILABLE,
      503,
      message,
      'install CRIU >= 4.2 as criu on PATH (native-scripts/install-criu.sh) and check that "criu check" passes',
      undefined,
      options,
    );
  }
}

/** CRIU failed; carries the tail of CRIU's own log, which says why. */
export class CriuError extends AppError {
  constructor(
    message: string,
    readonly logTail: string[],
    readonly logPath?: string,
    options?: { cause?: unknown },
  ) {
    super(
      ErrorCode.CRIU_FAILED,
      500,
      message,
      logTail.length > 0
        ? 'the last lines of the CRIU log are in details.logTail'
        : 'CRIU left no log; run "criu check" on the host',
      { logTail, logPath },
      options,
    );
  }
}

export class HostMismatchError extends AppError {
  constructor(message: string, hint: string) {
    super(ErrorCode.HOST_MISMATCH, 409, message, hint);
  }
}
