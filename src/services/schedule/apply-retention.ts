import { AppError, CheckpointInUseError, ErrorCode } from '../../domain/errors/index.js';
import { heldBytes, type Checkpoint } from '../../domain/checkpoint.js';
import { retained } from '../../domain/retention.js';
import type { Schedule, ScheduleRun } from '../../domain/schedule.js';
import type { CheckpointService } from '../checkpoint/checkpoint-service.js';

export interface RetentionOutcome {
  pruned: string[];
  retention: NonNullable<ScheduleRun['retention']>;
}

/**
 * Deletes a schedule's checkpoints (`ids`, those its runs made) that its retention policy does not keep; then,
 * while they take more than `maxTotalBytes` on disk, the oldest of those left. Never the newest, nor one in use.
 */
export async function applyRetention(
  checkpoints: CheckpointService,
  schedule: Schedule,
  ids: string[],
): Promise<RetentionOutcome> {
  const mine = new Set(ids);
  const oldestFirst = checkpoints
    .list()
    .filter((c) => mine.has(c.id))
    .sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.id < b.id ? -1 : 1));
  const { maxTotalBytes } = schedule.retain;
  const newest = oldestFirst.at(-1);
  if (!newest) return { pruned: [], retention: { storedBytes: 0, maxTotalBytes, overLimit: false } };
  const keep = retained(
    oldestFirst.map((c) => ({ id: c.id, createdAt: Date.parse(c.createdAt) })),
    schedule.retain,
    schedule.timezone,
  );
  keep.add(newest.id);
  const pruned: string[] = [];
  const drop = async (c: Checkpoint) => {
    if (c.id === newest.id || checkpoints.isInUse(c.id)) return;
    try {
      await checkpoints.remove(c.id);
      pruned.push(c.id);
    } catch (err) {
      if (!(err instanceof CheckpointInUseError)) ignoreGone(err);
    }
  };
  for (const c of oldestFirst) if (!keep.has(c.id)) await drop(c);
  // Read again each time: deleting a chain's level moves the pages its child needs into the child.
  const stored = () =>
    checkpoints
      .list()
      .filter((c) => mine.has(c.id) && !pruned.includes(c.id))
      .reduce((sum, c) => sum + heldBytes(c), 0);
  if (maxTotalBytes !== undefined)
    for (const c of oldestFirst) {
      if (stored() <= maxTotalBytes) break;
      if (!pruned.includes(c.id)) await drop(c);
    }
  const storedBytes = stored();
  const overLimit = maxTotalBytes !== undefined && storedBytes > maxTotalBytes;
  return {
    pruned,
    retention: {
      storedBytes,
      maxTotalBytes,
      overLimit,
      ...(overLimit ? { reason: overLimitReason(oldestFirst, pruned, newest, checkpoints) } : {}),
    },
  };
}

function overLimitReason(
  all: Checkpoint[],
  pruned: string[],
  newest: Checkpoint,
  checkpoints: CheckpointService,
): string {
  const inUse = all.filter((c) => !pruned.includes(c.id) && c.id !== newest.id && checkpoints.isInUse(c.id));
  return inUse.length > 0
    ? `${inUse.length} checkpoint(s) in use (being restored or exported) were kept; the next run tries again`
    : `the newest checkpoint alone takes ${heldBytes(newest)} bytes, and it is always kept`;
}

/** For a delete: a checkpoint already gone is no failure. */
export function ignoreGone(err: unknown): void {
  if (err instanceof AppError && err.code === ErrorCode.CHECKPOINT_NOT_FOUND) return;
  throw err;
}
