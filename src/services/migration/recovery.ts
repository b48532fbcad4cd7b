import { ErrorCode, MigrationInterruptedError } from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { Migration } from '../../domain/migration.js';
import { inBackground } from '../support/background.js';
import type { PeerAgent } from '../ports/peer-agent.js';
import { checkpointName, type MigrationContext } from './context.js';
import { frozenSourceEntries, releaseSource } from './frozen-source.js';
import { endMigration, failAfter } from './records.js';
import { settleAfterFailure } from './settlement.js';
import { dropPreCopy } from './transfer.js';

/** The journal's open migrations from here: each that a crash interrupted, with what it needs to settle. */
export function openMigrationIntents(ctx: MigrationContext) {
  return (ctx.deps.journal?.pending() ?? []).flatMap((e) =>
    e.intent.kind === HostIntentKind.MIGRATION_SOURCE ? [{ id: e.id, intent: e.intent }] : [],
  );
}

/**
 * The stored migrations, into memory. One still running without its journal entry (none before the journal kept
 * migrations) cannot settle: it is recorded failed.
 */
export function loadMigrations(ctx: MigrationContext): void {
  const { store, clock } = ctx.deps;
  const open = new Set(openMigrationIntents(ctx).map((e) => e.intent.migrationId));
  for (const m of store.list()) {
    if (m.status === 'running' && !open.has(m.id)) {
      m.status = 'failed';
      m.endedAt = m.endedAt ?? new Date(clock.now()).toISOString();
      m.error = m.error ?? {
        phase: m.phases.at(-1)?.name ?? 'preflight',
        code: ErrorCode.MIGRATION_INTERRUPTED,
        message: 'cryo stopped during the migration',
      };
      store.save(m);
    }
    ctx.migrations.set(m.id, m);
  }
}

/**
 * Settles in the background every migration away from here that a crash interrupted: the target says whether
 * it runs the workload (then the source goes), else the source runs it again. Call it after host recovery.
 */
export function resumeInterrupted(ctx: MigrationContext): void {
  const open = new Set(openMigrationIntents(ctx).map((e) => e.intent.migrationId));
  for (const m of ctx.migrations.values()) {
    // A source still frozen for a migration that has ended (cryo died while it let the source go).
    if (!open.has(m.id) && frozenSourceEntries(ctx, m.id).length > 0)
      inBackground(
        ctx.log,
        `releasing the source of ended migration ${m.id}`,
        releaseSource(ctx, m, m.status === 'succeeded' ? 'stop' : 'thaw'),
      );
  }
  for (const { id, intent } of openMigrationIntents(ctx)) {
    const m = ctx.migrations.get(intent.migrationId);
    if (m?.status !== 'running') {
      ctx.deps.journal?.end(id);
      continue;
    }
    ctx.intents.set(m.id, id);
    ctx.inFlight.set(m.container.id, m.id);
    ctx.metrics.inFlight('migration', 1);
    const peer = ctx.deps.connect(m.target, intent.targetToken);
    inBackground(
      ctx.log,
      `settling interrupted migration ${m.id}`,
      resumeOne(ctx, m, peer, intent.keepSource),
    );
  }
}

async function resumeOne(
  ctx: MigrationContext,
  m: Migration,
  peer: PeerAgent,
  keepSource: boolean,
): Promise<void> {
  const failedIn = m.phases.at(-1)?.name ?? 'checkpoint';
  const checkpoint = ctx.deps.checkpoints.list({ name: checkpointName(m) })[0];
  if (!checkpoint) {
    // Host recovery has started the container again (its stop-mode checkpoint was never published), or it
    // waits frozen where its dump left it, and runs on from there.
    const incomplete = new MigrationInterruptedError('its checkpoint was not complete');
    try {
      await releaseSource(ctx, m, 'thaw');
      await dropPreCopy(ctx, m, peer);
    } catch (err) {
      failAfter(ctx, m, failedIn, incomplete, 'the thaw', err);
      return;
    }
    endMigration(ctx, m, 'failed', failedIn, incomplete);
    return;
  }
  m.checkpointId = checkpoint.id;
  await settleAfterFailure(
    ctx,
    m,
    peer,
    keepSource,
    failedIn,
    new MigrationInterruptedError('it was settled after the restart'),
  );
}
