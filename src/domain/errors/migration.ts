import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class TargetError extends AppError {
  constructor(
    code:
      | typeof ErrorCode.TARGET_UNREACHABLE
      | typeof ErrorCode.TARGET_UNAUTHORIZED
      | typeof ErrorCode.TARGET_REFUSED,
    message: string,
    hint: string,
  ) {
    super(code, code === ErrorCode.TARGET_UNAUTHORIZED ? 400 : 502, message, hint);
  }
}

export class MigrationInProgressError extends AppError {
  constructor(container: string, id: string) {
    super(
      ErrorCode.MIGRATION_IN_PROGRESS,
      409,
      `container "${container}" is already being migrated (${id})`,
      `follow it with GET /v1/migrations/${id}`,
    );
  }
}

export class MigrationNotFoundError extends AppError {
  constructor(id: string) {
    super(
      ErrorCode.MIGRATION_NOT_FOUND,
      404,
      `no migration with id "${id}"`,
      'list migrations with GET /v1/migrations',
    );
  }
}

export class InsufficientSpaceError extends AppError {
  constructor(needed: number, free: number, floor: number) {
    super(
      ErrorCode.TARGET_NO_SPACE,
      507,
      `the target has ${free} bytes free, the checkpoint needs about ${needed}` +
        (floor > 0 ? ` and ${floor} must stay free there` : ''),
      "free space in the target's data directory",
    );
  }
}

/** What a migration record says when cryo stopped (crash or kill) before the migration ended. */
export class MigrationInterruptedError extends AppError {
  constructor(outcome: string) {
    super(
      ErrorCode.MIGRATION_INTERRUPTED,
      500,
      `cryo stopped during the migration; ${outcome}`,
      "see cryo's log of the restart",
    );
  }
}

/** strategy "post-copy" asked where one of the hosts, or the container, cannot take part in it. */
export class PostCopyUnavailableError extends AppError {
  constructor(reasons: string[]) {
    super(
      ErrorCode.POST_COPY_UNAVAILABLE,
      409,
      `post-copy is not possible here: ${reasons.join('; ')}`,
      'use strategy "auto" (which falls back to stop-and-copy) or "stop-and-copy"; native-scripts/setup-host.sh sets a host up for post-copy (CRIU, cryo\'s runtime, fs.pipe-max-size)',
    );
  }
}
