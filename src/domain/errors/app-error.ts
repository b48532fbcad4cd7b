import type { ErrorCode } from './error-code.js';

/** Base of every error cryo reports to a client: a stable `code`, an HTTP status and an optional hint. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly statusCode: number,
    message: string,
    readonly hint?: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
