import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RestoreResult } from '../../domain/checkpoint.js';
import { ProcessRunningError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR, PROCESS_RECORD, RESTORED_PIDFILE } from '../../domain/layout.js';
import type { ProcessContext } from './deps.js';
import { ProcessRecordSchema } from '../../domain/process-record.js';

const ZOMBIE_WAIT_MS = 10_000;

/** Restores a process checkpoint detached; CRIU needs the tree's own pids, so it waits for zombies to go. */
export async function restoreProcess(ctx: ProcessContext, dir: string): Promise<RestoreResult> {
  const started = ctx.clock.now();
  const record = ProcessRecordSchema.parse(
    JSON.parse(await readFile(path.join(dir, PROCESS_RECORD), 'utf8')),
  );
  const release = ctx.locks.acquire(`pid:${record.pid}`, 'restore', `pid ${record.pid}`);
  try {
    for (const p of new Set([record.pid, ...record.pids])) await waitGone(ctx, p);
    const images = path.join(dir, CHECKPOINT_IMAGES_DIR);
    await rm(path.join(images, RESTORED_PIDFILE), { force: true });
    const { pid, stats } = await ctx.engine.restore(images, record.options);
    return { pid, restoreMs: ctx.clock.now() - started, stats };
  } finally {
    release();
  }
}

async function waitGone(ctx: ProcessContext, pid: number): Promise<void> {
  const deadline = ctx.clock.now() + ZOMBIE_WAIT_MS;
  for (;;) {
    const liveness = await ctx.inspector.liveness(pid);
    if (liveness === 'gone') return;
    if (liveness === 'running') throw new ProcessRunningError(pid);
    // PID 1 reaps late here; CRIU cannot restore over a pid that is still a zombie.
    if (ctx.clock.now() > deadline) throw new ProcessRunningError(pid);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
