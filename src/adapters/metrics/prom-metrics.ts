import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics, MetricsExposition, OperationName, Outcome } from '../../services/ports/metrics.js';

/** Read at each scrape: what the checkpoints take, and what the data directory has left. */
export interface StorageGauges {
  storedBytes(): number;
  checkpoints(): number;
  freeBytes(): Promise<number>;
}

// Checkpoints and restores take from 0.1 s to minutes; freezes and downtimes from milliseconds to seconds.
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const PAUSE_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** cryo's metrics in a prom-client registry of its own, with Node's process metrics. Labels never hold ids of checkpoints. */
export class PromMetrics implements Metrics, MetricsExposition {
  private readonly registry = new Registry();
  private readonly durations = new Histogram({
    name: 'cryo_operation_duration_seconds',
    help: 'Duration of checkpoints, restores, exports, imports and migrations, by mode and outcome',
    labelNames: ['operation', 'mode', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly operations = new Counter({
    name: 'cryo_operations_total',
    help: 'Operations that ended, by outcome and error code ("" on success)',
    labelNames: ['operation', 'outcome', 'code'] as const,
    registers: [this.registry],
  });
  private readonly inFlightGauge = new Gauge({
    name: 'cryo_operations_in_flight',
    help: 'Operations under way',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  private readonly frozenSeconds = new Histogram({
    name: 'cryo_checkpoint_frozen_seconds',
    help: 'How long a workload stood still for a checkpoint (leave-running: from the freeze to the thaw)',
    buckets: PAUSE_BUCKETS,
    registers: [this.registry],
  });
  private readonly downtime = new Histogram({
    name: 'cryo_migration_downtime_seconds',
    help: 'From the freeze on the source to the workload running on the target',
    buckets: PAUSE_BUCKETS,
    registers: [this.registry],
  });
  private readonly runs = new Counter({
    name: 'cryo_scheduled_runs_total',
    help: 'Scheduled snapshot runs by schedule and outcome (succeeded, failed, skipped)',
    labelNames: ['schedule', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly lastSuccess = new Gauge({
    name: 'cryo_schedule_last_success_timestamp_seconds',
    help: 'When each schedule last took a snapshot successfully (Unix time)',
    labelNames: ['schedule'] as const,
    registers: [this.registry],
  });

  readonly contentType: string;

  constructor(storage: StorageGauges) {
    this.contentType = this.registry.contentType;
    collectDefaultMetrics({ register: this.registry });
    const read: [string, string, () => number | Promise<number>][] = [
      [
        'cryo_checkpoint_stored_bytes',
        'Bytes that complete checkpoints take in the data directory',
        storage.storedBytes,
      ],
      ['cryo_checkpoints', 'Complete checkpoints in the catalog', storage.checkpoints],
      ['cryo_data_free_bytes', "Free bytes in the data directory's file system", storage.freeBytes],
    ];
    for (const [name, help, value] of read)
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          this.set(await value());
        },
      });
  }

  operation(op: OperationName, mode: string, outcome: Outcome, seconds: number, errorCode?: string): void {
    this.durations.observe({ operation: op, mode, outcome }, seconds);
    this.operations.inc({ operation: op, outcome, code: errorCode ?? '' });
  }

  inFlight(op: OperationName, delta: 1 | -1): void {
    this.inFlightGauge.inc({ operation: op }, delta);
  }

  frozen(seconds: number): void {
    this.frozenSeconds.observe(seconds);
  }

  migrationDowntime(seconds: number): void {
    this.downtime.observe(seconds);
  }

  scheduledRun(scheduleId: string, outcome: string, endedAt: Date): void {
    this.runs.inc({ schedule: scheduleId, outcome });
    if (outcome === 'succeeded') this.lastScheduledSuccess(scheduleId, endedAt);
  }

  lastScheduledSuccess(scheduleId: string, endedAt: Date): void {
    this.lastSuccess.set({ schedule: scheduleId }, endedAt.getTime() / 1000);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
