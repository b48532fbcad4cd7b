import type { ErrorCode } from './error-code.js';

/** Base of every error cryo reports to a client: a stable `code`, an HTTP status and an optional hint. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly statusCode: number,
    message: string,
    readonly hint?: string,
    // Not readonly: a caller that undid part of the failure (a container started again) says so in it.
    public details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  /** Adds `extra` to the details (an object); details of another shape are kept under `details.cause`. */
  addDetails(extra: Record<string, unknown>): this {
    const current = this.details;
    const base =
      current === undefined
        ? {}
        : typeof current === 'object' && current !== null && !Array.isArray(current)
          ? current
          : { cause: current };
    this.details = { ...base, ...extra };
    return this;
  }
}
