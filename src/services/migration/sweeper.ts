import { inBackground } from '../support/background.js';
import type { MigrationContext } from './context.js';

const SWEEP_EVERY_MS = 3_600_000;

/** Removes migrations' checkpoints, sent or received, once past the retention period, unless in use. */
export class MigrationSweeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ctx: MigrationContext) {}

  /** A sweep now, then hourly. */
  start(): void {
    const run = () => inBackground(this.ctx.log, 'sweeping migration checkpoints', this.sweep());
    this.timer = setInterval(run, SWEEP_EVERY_MS);
    this.timer.unref();
    run();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async sweep(): Promise<string[]> {
    const { checkpoints, clock, retentionMs } = this.ctx.deps;
    const removed: string[] = [];
    for (const c of checkpoints.list()) {
      // Only the catalog's mark says a checkpoint is a migration's: a user's may have any name.
      if (!c.migration) continue;
      if (Date.parse(c.createdAt) > clock.now() - retentionMs || checkpoints.isInUse(c.id)) continue;
      await checkpoints.remove(c.id).then(
        () => removed.push(c.id),
        (err: unknown) =>
          this.ctx.log.warn(
            { checkpoint: c.id, err: (err as Error).message },
            'could not sweep a migration checkpoint',
          ),
      );
    }
    return removed;
  }
}
