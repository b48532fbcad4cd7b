import { EventEmitter } from 'node:events';
import {
  ContainerNotFoundError,
  ContainerNotRunningError,
  MigrationInProgressError,
  MigrationNotFoundError,
} from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { CreateMigrationBody, Migration } from '../../domain/migration.js';
import { inBackground } from '../support/background.js';
import { newId } from '../support/ids.js';
import { NO_LOGGER } from '../ports/logger.js';
import { NO_METRICS } from '../ports/metrics.js';
import type { MigrationContext, MigrationPlan, MigrationServiceDeps } from './context.js';
import { runMigration } from './pipeline.js';
import { planMigration } from './plan.js';
import { endMigration, publish, recordPhase } from './records.js';
import { loadMigrations, resumeInterrupted } from './recovery.js';
import { MigrationSweeper } from './sweeper.js';

export type { MigrationServiceDeps } from './context.js';

/** Moves a running container to another cryo agent; a failure after the checkpoint rolls it back here. */
export class MigrationService {
  private readonly ctx: MigrationContext;
  private readonly sweeper: MigrationSweeper;

  constructor(deps: MigrationServiceDeps) {
    const events = new EventEmitter();
    events.setMaxListeners(0);
    this.ctx = {
      deps,
      metrics: deps.metrics ?? NO_METRICS,
      log: deps.log ?? NO_LOGGER,
      migrations: new Map(),
      inFlight: new Map(),
      events,
      intents: new Map(),
      heldFrozen: new Set(),
      pages: new Map(),
    };
    this.sweeper = new MigrationSweeper(this.ctx);
    loadMigrations(this.ctx);
  }

  /** Settles in the background what a crash interrupted (see recovery.ts); call it after host recovery. */
  resumeInterrupted(): void {
    resumeInterrupted(this.ctx);
  }

  /** Starts the hourly removal of migration checkpoints older than the retention period. */
  startSweeper(): void {
    this.sweeper.start();
  }

  stopSweeper(): void {
    this.sweeper.stop();
  }

  /** Removes migration checkpoints (sent or received) past the retention period, unless in use. */
  sweep(): Promise<string[]> {
    return this.sweeper.sweep();
  }

  list(): Migration[] {
    return [...this.ctx.migrations.values()];
  }

  get(id: string): Migration {
    const m = this.ctx.migrations.get(id);
    if (!m) throw new MigrationNotFoundError(id);
    return m;
  }

  /** Calls `listener` with every change of the migration until it ends; returns the unsubscribe function. */
  subscribe(id: string, listener: (m: Migration) => void): () => void {
    this.get(id);
    const handler = (m: Migration) => {
      if (m.id === id) listener(m);
    };
    this.ctx.events.on('update', handler);
    return () => this.ctx.events.off('update', handler);
  }

  /** Checks both sides (synchronously, so that bad targets fail the request), then migrates in the background. */
  async start(ref: string, body: CreateMigrationBody): Promise<Migration> {
    const { ctx } = this;
    const { runtime, clock, journal } = ctx.deps;
    const container = await runtime.inspect(ref);
    if (!container) throw new ContainerNotFoundError(ref);
    if (!container.running || container.paused) throw new ContainerNotRunningError(ref, container.state);
    const busy = ctx.inFlight.get(container.id);
    if (busy) throw new MigrationInProgressError(container.name, busy);

    const now = clock.now();
    const migration: Migration = {
      id: newId(now),
      container: { id: container.id, name: container.name },
      target: body.target,
      status: 'running',
      phases: [],
      startedAt: new Date(now).toISOString(),
      bytesSent: 0,
    };
    ctx.inFlight.set(container.id, migration.id);
    ctx.migrations.set(migration.id, migration);
    ctx.metrics.inFlight('migration', 1);
    const peer = ctx.deps.connect(body.target, body.targetToken);
    let plan: MigrationPlan;
    try {
      plan = await recordPhase(ctx, migration, 'preflight', () => planMigration(ctx, peer, container, body));
    } catch (err) {
      endMigration(ctx, migration, 'failed', 'preflight', err);
      throw err;
    }
    migration.strategy = plan.strategy;
    publish(ctx, migration);
    if (journal)
      ctx.intents.set(
        migration.id,
        journal.begin({
          kind: HostIntentKind.MIGRATION_SOURCE,
          migrationId: migration.id,
          targetToken: body.targetToken,
          keepSource: body.keepSource,
        }),
      );
    inBackground(
      ctx.log,
      `migration ${migration.id}`,
      runMigration(ctx, migration, container, peer, body, plan),
    );
    return migration;
  }
}
