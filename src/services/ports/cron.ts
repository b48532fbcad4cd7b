/** Cron expressions: validation and the next time they fire. */
export interface CronParser {
  /** Undefined when the expression is valid, otherwise the reason it is not. */
  problem(expression: string, timezone?: string): string | undefined;
  /** The first time strictly after `after` at which the expression fires. */
  next(expression: string, after: Date, timezone?: string): Date | undefined;
}
