import { setTimeout as sleep } from 'node:timers/promises';
import type { RestoredContainer } from '../../domain/checkpoint.js';
import { DeadlineExceededError, MigrationInterruptedError, TargetError } from '../../domain/errors/index.js';
import type { Migration, MigrationPhaseName } from '../../domain/migration.js';
import { DEADLINES } from '../../defaults.js';
import { logged } from '../support/background.js';
import type { PeerAgent } from '../ports/peer-agent.js';
import { checkpointName, type MigrationContext } from './context.js';
import { releaseSource } from './frozen-source.js';
import { endMigration, failAfter, publish, recordPhase } from './records.js';
import { dropPreCopy } from './transfer.js';

const SETTLE_RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/** How often a post-copy source asks whether the target has all its pages. */
const PAGES_POLL_MS = 200;

/** A restore of the target's copy still holds it, or its pages still come: ask again once that has ended. */
class TargetStillRestoring extends Error {}

/**
 * After a failure or a crash past the checkpoint, the workload ends up on exactly one host: where the target
 * was asked to restore, only it can say whether the workload runs there; if it does not, the source runs it.
 * It runs in the background: nothing here rejects.
 */
export async function settleAfterFailure(
  ctx: MigrationContext,
  migration: Migration,
  peer: PeerAgent,
  keepSource: boolean,
  failedIn: MigrationPhaseName,
  cause: unknown,
): Promise<void> {
  let release: (() => void) | undefined;
  try {
    release = ctx.deps.checkpoints.retain(migration.checkpointId!).release;
    if (migration.targetContainer) return await completeOnTarget(ctx, migration, peer, keepSource);
    const restoreAsked = migration.phases.some((p) => p.name === 'restore');
    // A target silent past the deadline while the pages came: asking again would wait as long once more.
    if (restoreAsked && !(cause instanceof DeadlineExceededError)) {
      let there: RestoredContainer | undefined;
      try {
        there = await recordPhase(ctx, migration, 'reconcile', () => workloadOnTarget(ctx, migration, peer));
      } catch (err) {
        if (!(err instanceof DeadlineExceededError)) throw err;
        return await rollBackToSource(ctx, migration, peer, failedIn, err, restoreAsked);
      }
      if (there) {
        migration.targetContainer = { id: there.id, name: there.name };
        return await completeOnTarget(ctx, migration, peer, keepSource);
      }
    }
    await rollBackToSource(ctx, migration, peer, failedIn, cause, restoreAsked);
  } catch (err) {
    // Its checkpoint deleted meanwhile, say: the migration ends failed with both reasons.
    failAfter(ctx, migration, failedIn, cause, 'settling it', err);
  } finally {
    release?.();
  }
}

/**
 * Post-copy after the target's restore: the target runs the workload while its pages come from here. Once the
 * target has them all, the source goes; if the target lost its container for want of pages, the source thaws.
 */
export async function awaitTargetPages(
  ctx: MigrationContext,
  migration: Migration,
  peer: PeerAgent,
  keepSource: boolean,
): Promise<void> {
  // A failure here is settled as any after the restore was asked: reconcile, which waits for the pages too.
  // Only the target knows whether every page arrived: CRIU here also ends well when its peer just hangs up.
  const there = await recordPhase(ctx, migration, 'pages', () => workloadOnTarget(ctx, migration, peer));
  if (!there) {
    const lost = new MigrationInterruptedError(
      "the target's container did not get all its memory pages and was killed there; the source runs on",
    );
    return rollBackToSource(ctx, migration, peer, 'pages', lost, true);
  }
  migration.targetContainer = { id: there.id, name: there.name };
  // Neither copy holds the memory pages: no restore could use them.
  await peer
    .deleteCheckpoint(migration.targetCheckpointId!)
    .catch(logged(ctx.log, "deleting the target's copy after a post-copy"));
  await completeOnTarget(ctx, migration, peer, keepSource, async () => {
    await ctx.deps.checkpoints
      .remove(migration.checkpointId!)
      .catch(logged(ctx.log, 'deleting the checkpoint of a post-copy'));
  });
}

/**
 * The target's container restored from its copy, if it runs; else the copy is deleted first, so that no restore
 * can start there later. Asks again while the target cannot answer or still restores; a target silent for the
 * settle deadline fails it with DEADLINE_EXCEEDED.
 */
async function workloadOnTarget(
  ctx: MigrationContext,
  migration: Migration,
  peer: PeerAgent,
): Promise<RestoredContainer | undefined> {
  const { clock } = ctx.deps;
  const copy = migration.targetCheckpointId!;
  const waits = ctx.deps.settleRetryMs ?? SETTLE_RETRY_MS;
  const silentFor = ctx.deps.settleTimeoutMs ?? DEADLINES.migrationSettle.ms;
  let answeredAt = clock.now();
  // A disk pre-copy's restore goes into the container prepared from its seed, which carries the seed's id.
  const seed = migration.precopy?.targetCheckpointId;
  const running = async () => {
    const there = [
      ...(await peer.restoredContainers(copy)),
      ...(seed ? await peer.restoredContainers(seed) : []),
    ];
    if (there.some((c) => c.running && c.pages === 'loading'))
      throw new TargetStillRestoring('its container there still fetches its memory pages from here');
    return there.find((c) => c.running && c.pages !== 'failed');
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const before = await running();
      if (before) return before;
      if ((await peer.deleteCheckpoint(copy)) === 'in-use') throw new TargetStillRestoring('');
      return await running();
    } catch (err) {
      if (!(err instanceof TargetError || err instanceof TargetStillRestoring)) throw err;
      const now = clock.now();
      if (err instanceof TargetStillRestoring) answeredAt = now;
      else if (now - answeredAt >= silentFor)
        throw new DeadlineExceededError(
          `an answer from the target ${migration.target} (whether it runs the workload)`,
          silentFor,
          DEADLINES.migrationSettle.setting,
          { cause: err },
        );
      const phase = migration.phases.at(-1)!;
      const loading = err instanceof TargetStillRestoring && err.message !== '';
      phase.detail = loading
        ? err.message
        : err instanceof TargetStillRestoring
          ? 'the target is still restoring its copy'
          : `waiting for the target to answer: ${err.message}`;
      publish(ctx, migration);
      if (loading) attempt--;
      await sleep(loading ? PAGES_POLL_MS : waits[Math.min(attempt, waits.length - 1)]);
    }
  }
}

/** The workload runs on the target: the source goes (unless kept, or running again), its checkpoint stays. */
export async function completeOnTarget(
  ctx: MigrationContext,
  migration: Migration,
  peer: PeerAgent,
  keepSource: boolean,
  after: () => Promise<void> = async () => undefined,
): Promise<void> {
  const { runtime } = ctx.deps;
  await recordPhase(ctx, migration, 'finish', async () => {
    await releaseSource(ctx, migration, 'stop');
    const source = await runtime.inspect(migration.container.id);
    if (!keepSource && source && !source.running) await runtime.remove(source.id);
  }).catch(logged(ctx.log, `removing the source of migration ${migration.id}`));
  await after();
  await dropPreCopy(ctx, migration, peer, true);
  endMigration(ctx, migration, 'succeeded');
}

/** The source container comes back from its checkpoint; a copy the target kept without a restore goes. */
export async function rollBackToSource(
  ctx: MigrationContext,
  migration: Migration,
  peer: PeerAgent,
  failedIn: MigrationPhaseName,
  cause: unknown,
  copyGone: boolean,
): Promise<void> {
  try {
    await recordPhase(ctx, migration, 'rollback', async () => {
      if (!copyGone) await dropTargetCopy(ctx, migration, peer);
      // A source held frozen runs on from its freeze; one that stopped is restored from the checkpoint.
      await releaseSource(ctx, migration, 'thaw');
      const source = await ctx.deps.runtime.inspect(migration.container.id);
      // Already running again: a rollback interrupted after its restore, or someone started it.
      if (!source?.running) await ctx.deps.checkpoints.restore(migration.checkpointId!, { ports: 'free' });
      await dropPreCopy(ctx, migration, peer);
    });
    endMigration(ctx, migration, 'rolled_back', failedIn, cause);
  } catch (err) {
    failAfter(ctx, migration, failedIn, cause, 'the rollback', err);
  }
}

/** Best effort: the target may have published the import without the source learning its id. */
async function dropTargetCopy(ctx: MigrationContext, migration: Migration, peer: PeerAgent): Promise<void> {
  try {
    const copy = migration.targetCheckpointId ?? (await peer.findCheckpoint(checkpointName(migration)))?.id;
    if (copy) await peer.deleteCheckpoint(copy);
  } catch (err) {
    // An unreachable target removes an unfinished import itself; a finished one ages out with its sweeper.
    logged(ctx.log, "deleting the target's copy in a rollback")(err);
  }
}
