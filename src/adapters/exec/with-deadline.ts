import { DeadlineExceededError } from '../../domain/errors/index.js';

/**
 * `work`, or DEADLINE_EXCEEDED once `ms` have passed without it settling; `onExpire` runs first, to end what still
 * waits (kill a command, thaw a workload). `work` is observed either way: a late rejection is never unhandled.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  deadline: { what: string; ms: number; setting: string },
  onExpire: () => Promise<unknown> = async () => undefined,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), deadline.ms);
  });
  work.catch(() => undefined);
  try {
    const first = await Promise.race([work, expired]);
    if (first !== 'expired') return first as T;
  } finally {
    clearTimeout(timer);
  }
  await onExpire();
  throw new DeadlineExceededError(deadline.what, deadline.ms, deadline.setting);
}
