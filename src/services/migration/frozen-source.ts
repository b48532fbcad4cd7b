import { setTimeout as sleep } from 'node:timers/promises';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { Migration } from '../../domain/migration.js';
import type { MigrationContext } from './context.js';

/** How long a stop waits for a post-copy page server to finish serving before the source goes anyway. */
const SERVED_GRACE_MS = 30_000;

/** The journal's record of a source frozen for this migration (its dump's, which outlives a crash). */
export function frozenSourceEntries(ctx: MigrationContext, migrationId: string) {
  return (ctx.deps.journal?.pending() ?? []).filter(
    (e) => e.intent.kind === HostIntentKind.FROZEN && e.intent.heldBy === migrationId,
  );
}

/**
 * Ends the freeze that kept the source for this migration, if one does: 'stop' once the target runs the
 * workload (the source is killed while frozen, so it never runs again), 'thaw' when it does not.
 */
export async function releaseSource(
  ctx: MigrationContext,
  migration: Migration,
  how: 'stop' | 'thaw',
): Promise<void> {
  const entries = frozenSourceEntries(ctx, migration.id);
  if (!ctx.heldFrozen.has(migration.id) && entries.length === 0) return;
  const { runtime } = ctx.deps;
  await stopPageServer(ctx, migration, how);
  if (how === 'stop') await runtime.stopFrozen(migration.container.id);
  else await runtime.thawFrozen(migration.container.id);
  for (const e of entries) ctx.deps.journal?.end(e.id);
  ctx.heldFrozen.delete(migration.id);
}

/**
 * A post-copy source's CRIU holds its tasks until it stops serving: it is told to stop (a connection that ends
 * at once) before a thaw, and awaited before a stop. A page server of a cryo that died is reached by its address.
 */
async function stopPageServer(
  ctx: MigrationContext,
  migration: Migration,
  how: 'stop' | 'thaw',
): Promise<void> {
  const pages = ctx.pages.get(migration.id);
  ctx.pages.delete(migration.id);
  if (how === 'thaw') {
    if (pages) await pages.abort();
    else if (migration.pageServer) await ctx.deps.runtime.hangUpPageServer(migration.pageServer);
    return;
  }
  if (pages) await Promise.race([pages.served.catch(() => undefined), sleep(SERVED_GRACE_MS)]);
}
