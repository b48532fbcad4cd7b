import type { BigIntStats } from 'node:fs';

/**
 * The kernel stamps ctime from a coarse clock (a tick, 1-10 ms), so a file written just after it was read may keep
 * its ctime: a file changed this close to its read is sent again whatever its stamp says (git's "racily clean").
 */
const RACY_NS = 100_000_000n;

/** The part of a file's metadata that any write to it, or change of it, moves; '' when too recent to trust. */
export function stampOf(st: BigIntStats, readAtNs: bigint = nowNs()): string {
  return st.ctimeNs >= readAtNs - RACY_NS ? '' : keyOf(st);
}

/** Whether the file is as it was when `recorded` was stamped. */
export function sameStamp(recorded: string | undefined, st: BigIntStats): boolean {
  return recorded !== undefined && recorded !== '' && recorded === keyOf(st);
}

function keyOf(st: BigIntStats): string {
  return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}:${st.uid}:${st.gid}`;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
