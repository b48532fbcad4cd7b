import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  /** What is awaited, for the error when it never comes. */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Asks `probe` again and again until it answers something other than undefined or false, and returns that; past
 * the deadline, throws naming `what` and the last answer or error. Tests wait with it rather than for a fixed time.
 */
export async function eventually<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { what, timeoutMs = 20_000, intervalMs = 50 }: EventuallyOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const answer = await probe();
      if (answer !== undefined && answer !== false) return answer;
      last = answer;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline)
      throw new Error(
        `${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : String(last)})`,
      );
    await sleep(intervalMs);
  }
}
