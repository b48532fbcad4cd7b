import type { HostIntent, JournaledIntent } from '../../domain/host-intent.js';

/**
 * The intent journal: what cryo is about to change outside its data directory, recorded durably before it is
 * changed and ended once it is put back, so that a start-up after a crash can undo it.
 */
export interface HostJournal {
  begin(intent: HostIntent): number;
  end(id: number): void;
  pending(): JournaledIntent[];
}

/** Undoes one recorded change (the adapter that made it knows how). */
export interface HostStateUndo {
  undo(intent: HostIntent): Promise<void>;
}

/** Runs `fn` with `intent` recorded; the record ends only once `fn` has finished, put back or not. */
export async function withIntent<T>(
  journal: HostJournal | undefined,
  intent: HostIntent,
  fn: () => Promise<T>,
): Promise<T> {
  const id = journal?.begin(intent);
  try {
    return await fn();
  } finally {
    if (id !== undefined) journal?.end(id);
  }
}
