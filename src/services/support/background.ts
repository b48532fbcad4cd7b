import type { Logger } from '../ports/logger.js';

/**
 * Runs work nobody awaits: its failure is logged as `what` and never rethrown, so it can never end the process
 * as an unhandled rejection.
 */
export function inBackground(
  log: Logger,
  what: string,
  work: Promise<unknown> | (() => Promise<unknown>),
): void {
  const promise = typeof work === 'function' ? Promise.resolve().then(work) : work;
  promise.catch((err: unknown) => log.error({ err: describeError(err) }, `${what} failed`));
}

/** Swallows a failure of best-effort work after logging it at warn: for `.catch(logged(log, '...'))`. */
export function logged(log: Logger, what: string): (err: unknown) => undefined {
  return (err: unknown) => {
    log.warn({ err: describeError(err) }, `${what} failed; going on`);
    return undefined;
  };
}

function describeError(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { message: String(err) };
}
