import { Cron } from 'croner';
import type { CronParser } from '../../services/ports/cron.js';

const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/** Cron through croner: 5 fields, 6 with seconds first, and the @hourly family. */
export class CronerCron implements CronParser {
  problem(expression: string, timezone?: string): string | undefined {
    const trimmed = expression.trim();
    const fields = trimmed.split(/\s+/).length;
    if (trimmed.startsWith('@') ? !NICKNAMES.has(trimmed.toLowerCase()) : fields !== 5 && fields !== 6) {
      return `expected 5 or 6 fields or a nickname like @hourly, got "${trimmed}"`;
    }
    try {
      const next = this.cron(trimmed, timezone).nextRun(new Date());
      return next ? undefined : 'it never fires';
    } catch (err) {
      return (err as Error).message;
    }
  }

  next(expression: string, after: Date, timezone?: string): Date | undefined {
    return this.cron(expression.trim(), timezone).nextRun(after) ?? undefined;
  }

  private cron(expression: string, timezone?: string): Cron {
    return new Cron(expression, { paused: true, ...(timezone ? { timezone } : {}) });
  }
}
