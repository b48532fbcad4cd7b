import type { Migration, MigrationPhaseName } from '../../domain/migration.js';
import { errorCode } from '../ports/metrics.js';
import { message, type MigrationContext } from './context.js';

/** Runs one phase of a migration, recording its start, its end and how long it took, or how it failed. */
export async function recordPhase<T>(
  ctx: MigrationContext,
  migration: Migration,
  name: MigrationPhaseName,
  fn: () => Promise<T>,
): Promise<T> {
  const { clock } = ctx.deps;
  const started = clock.now();
  const phase = { name, startedAt: new Date(started).toISOString(), status: 'running' as const };
  migration.phases.push(phase);
  publish(ctx, migration);
  try {
    const result = await fn();
    Object.assign(phase, { status: 'done', ms: clock.now() - started });
    return result;
  } catch (err) {
    Object.assign(phase, { status: 'failed', ms: clock.now() - started, detail: message(err) });
    throw err;
  } finally {
    publish(ctx, migration);
  }
}

/** Records a phase that did not run, and why. */
export function recordSkipped(
  ctx: MigrationContext,
  migration: Migration,
  name: MigrationPhaseName,
  detail: string,
): void {
  migration.phases.push({
    name,
    startedAt: new Date(ctx.deps.clock.now()).toISOString(),
    ms: 0,
    status: 'skipped',
    detail,
  });
  publish(ctx, migration);
}

/** Ends a migration: its status and error recorded, its container free again, its journal entry closed. */
export function endMigration(
  ctx: MigrationContext,
  migration: Migration,
  status: Migration['status'],
  phase?: MigrationPhaseName,
  err?: unknown,
): void {
  migration.status = status;
  migration.endedAt = new Date(ctx.deps.clock.now()).toISOString();
  if (phase && err !== undefined) migration.error = { phase, code: errorCode(err), message: message(err) };
  ctx.inFlight.delete(migration.container.id);
  measure(ctx, migration);
  publish(ctx, migration);
  const intent = ctx.intents.get(migration.id);
  if (intent !== undefined) ctx.deps.journal?.end(intent);
  ctx.intents.delete(migration.id);
}

/** Ends the migration failed with both errors: the one that stopped it, and the one that undoing it met. */
export function failAfter(
  ctx: MigrationContext,
  migration: Migration,
  failedIn: MigrationPhaseName,
  cause: unknown,
  step: string,
  err: unknown,
): void {
  endMigration(
    ctx,
    migration,
    'failed',
    failedIn,
    new Error(`${message(cause)}; then ${step} failed: ${message(err)}`),
  );
}

/** Stores the migration and tells its subscribers. */
export function publish(ctx: MigrationContext, migration: Migration): void {
  ctx.deps.store.save(migration);
  ctx.events.emit('update', structuredClone(migration));
}

function measure(ctx: MigrationContext, migration: Migration): void {
  const { metrics } = ctx;
  metrics.inFlight('migration', -1);
  const seconds = (Date.parse(migration.endedAt!) - Date.parse(migration.startedAt)) / 1000;
  const outcome =
    migration.status === 'succeeded'
      ? 'success'
      : migration.status === 'rolled_back'
        ? 'rolled_back'
        : 'failure';
  const strategy = migration.strategy?.used ?? 'stop-and-copy';
  metrics.operation('migration', strategy, outcome, seconds, migration.error?.code);
  if (migration.downtimeMs !== undefined && migration.status === 'succeeded')
    metrics.migrationDowntime(migration.downtimeMs / 1000);
}
