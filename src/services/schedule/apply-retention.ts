import { AppError, CheckpointInUseError, ErrorCode } from '../../domain/errors/index.js';
import { retained } from '../../domain/retention.js';
import type { Schedule } from '../../domain/schedule.js';
import type { CheckpointService } from '../checkpoint-service.js';

/**
 * Deletes a schedule's checkpoints (`ids`, those its runs made) that its retention policy does not keep, never
 * the newest nor one in use; returns the ids it deleted.
 */
export async function applyRetention(
  checkpoints: CheckpointService,
  schedule: Schedule,
  ids: string[],
): Promise<string[]> {
  const mine = new Set(ids);
  const existing = checkpoints.list().filter((c) => mine.has(c.id));
  if (existing.length === 0) return [];
  const keep = retained(
    existing.map((c) => ({ id: c.id, createdAt: Date.parse(c.createdAt) })),
    schedule.retain,
    schedule.timezone,
  );
  const newest = existing.reduce((a, b) => (Date.parse(b.createdAt) > Date.parse(a.createdAt) ? b : a));
  keep.add(newest.id);
  const pruned: string[] = [];
  for (const c of existing) {
    if (keep.has(c.id) || checkpoints.isInUse(c.id)) continue;
    try {
      await checkpoints.remove(c.id);
      pruned.push(c.id);
    } catch (err) {
      if (!(err instanceof CheckpointInUseError)) ignoreGone(err);
    }
  }
  return pruned;
}

/** For a delete: a checkpoint already gone is no failure. */
export function ignoreGone(err: unknown): void {
  if (err instanceof AppError && err.code === ErrorCode.CHECKPOINT_NOT_FOUND) return;
  throw err;
}
