import { AppError, ErrorCode } from '../../domain/errors/index.js';

/** The operations cryo measures; a label value, so a closed set. */
export type OperationName = 'checkpoint' | 'restore' | 'export' | 'import' | 'migration';

/** How an operation ended; migrations also end `rolled_back`. */
export type Outcome = 'success' | 'failure' | 'rolled_back';

/** What the use cases report as they run (Prometheus in the server; nothing in unit tests unless asked). */
export interface Metrics {
  operation(op: OperationName, mode: string, outcome: Outcome, seconds: number, errorCode?: string): void;
  inFlight(op: OperationName, delta: 1 | -1): void;
  /** How long a workload stood still for a checkpoint. */
  frozen(seconds: number): void;
  migrationDowntime(seconds: number): void;
  scheduledRun(scheduleId: string, outcome: string, endedAt: Date): void;
  /** A schedule's last successful run as the catalog has it (at start-up, so that the time survives restarts). */
  lastScheduledSuccess(scheduleId: string, endedAt: Date): void;
}

/** The metrics in Prometheus's text format, for GET /metrics. */
export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

export const NO_METRICS: Metrics = {
  operation: () => undefined,
  inFlight: () => undefined,
  frozen: () => undefined,
  migrationDowntime: () => undefined,
  scheduledRun: () => undefined,
  lastScheduledSuccess: () => undefined,
};

/** Runs `fn` counted in flight, and reports its duration and outcome (with the error's code) when it ends. */
export async function measured<T>(
  metrics: Metrics,
  op: OperationName,
  mode: string,
  fn: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  metrics.inFlight(op, 1);
  try {
    const result = await fn();
    metrics.operation(op, mode, 'success', (performance.now() - started) / 1000);
    return result;
  } catch (err) {
    metrics.operation(op, mode, 'failure', (performance.now() - started) / 1000, errorCode(err));
    throw err;
  } finally {
    metrics.inFlight(op, -1);
  }
}

export function errorCode(err: unknown): string {
  return err instanceof AppError ? err.code : ErrorCode.INTERNAL_ERROR;
}
