import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class SidecarUnavailableError extends AppError {
  constructor(detail: string) {
    super(
      ErrorCode.SIDECAR_UNAVAILABLE,
      409,
      `no cryo sidecar answers: ${detail}`,
      "the container's job must use cryo's sidecar SDK (cryo/sidecar), which listens on /run/cryo/sidecar.sock",
    );
  }
}

export class CheckpointTriggerRefusedError extends AppError {
  constructor(reason: string, message: string) {
    super(
      ErrorCode.APPLICATION_CHECKPOINT_REFUSED,
      409,
      message,
      reason === 'MIN_PAUSE'
        ? 'wait for the minimum pause between checkpoints, then retry'
        : reason === 'TOO_MANY_FAILURES'
          ? "checkpoints of this job keep failing; see cryo's log and the job's output"
          : 'retry when the checkpoint in progress has ended',
      { reason },
    );
  }
}

export class ApplicationCheckpointFailedError extends AppError {
  constructor(reason: string, message: string) {
    super(
      ErrorCode.APPLICATION_CHECKPOINT_FAILED,
      502,
      `the job's operator checkpoint failed (${reason}): ${message}`,
      reason === 'EXPIRED'
        ? 'some subtask did not ack in time; the job may be overloaded or stuck'
        : "see the job's output for why a subtask declined",
      { reason },
    );
  }
}

export class ApplicationRestoreFailedError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.APPLICATION_RESTORE_FAILED,
      502,
      `the job's operator state could not be restored: ${message}`,
      "see the job's output; the checkpoint is kept",
      undefined,
      options,
    );
  }
}
