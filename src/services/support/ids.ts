import { randomBytes } from 'node:crypto';

/** A time-ordered id: 11 base-36 digits of milliseconds, then 10 random ones. */
export function newId(nowMs: number): string {
  const time = nowMs.toString(36).padStart(11, '0');
  const random = BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString(36)
    .padStart(13, '0')
    .slice(0, 10);
  return `${time}${random}`;
}
