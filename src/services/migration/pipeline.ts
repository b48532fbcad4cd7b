import type { CreateMigrationBody, Migration, MigrationPhaseName } from '../../domain/migration.js';
import type { CreateCheckpointInternals } from '../checkpoint/checkpoint-service.js';
import type { ServedPages } from '../checkpoint/create.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import type { PeerAgent } from '../ports/peer-agent.js';
import { checkpointName, type MigrationContext, type MigrationPlan } from './context.js';
import { endMigration, recordPhase, recordSkipped } from './records.js';
import { awaitTargetPages, completeOnTarget, settleAfterFailure } from './settlement.js';
import { dropPreCopy, preCopyDisk, sendCheckpoint } from './transfer.js';

const NOT_THROUGH_RUNC = "the container is not dumped through runc here (Docker's checkpoint API path)";

/**
 * A migration after its pre-flight: the image, the disk pre-copy, the checkpoint (the freeze), the stream and the
 * target's restore, then the source goes, or, on a failure past the checkpoint, it is settled. Never rejects.
 */
export async function runMigration(
  ctx: MigrationContext,
  migration: Migration,
  container: ContainerInfo,
  peer: PeerAgent,
  body: CreateMigrationBody,
  plan: MigrationPlan,
): Promise<void> {
  const { runtime, checkpoints, clock } = ctx.deps;
  try {
    if (plan.imagePresent) recordSkipped(ctx, migration, 'image', 'the target has the image');
    else
      await recordPhase(ctx, migration, 'image', async () =>
        peer.loadImage(await runtime.saveImage(container.imageId, container.image)),
      );
  } catch (err) {
    endMigration(ctx, migration, 'failed', 'image', err);
    return;
  }

  // Where it can, the source stays frozen after its dump instead of stopping: Docker's handling of the exit
  // leaves the downtime, and a rollback before the target runs it is a thaw.
  let hold: boolean;
  let diskSince: CreateCheckpointInternals['diskSince'];
  try {
    hold = await runtime.canHoldFrozen(container.id);
    if (body.diskPreCopy && !hold) recordSkipped(ctx, migration, 'precopy', NOT_THROUGH_RUNC);
    else if (body.diskPreCopy)
      diskSince = await recordPhase(ctx, migration, 'precopy', () =>
        preCopyDisk(ctx, migration, container, peer, body),
      );
  } catch (err) {
    await dropPreCopy(ctx, migration, peer);
    endMigration(ctx, migration, 'failed', 'precopy', err);
    return;
  }

  let frozenAt = 0;
  let failedIn: MigrationPhaseName = 'checkpoint';
  try {
    // Post-copy: the memory pages stay in the frozen tasks, served to the target from a page server here.
    const { pageServer } = plan;
    if (pageServer) migration.pageServer = pageServer;
    const checkpoint = await recordPhase(ctx, migration, 'checkpoint', () =>
      checkpoints.create(
        container.id,
        { name: checkpointName(migration), leaveRunning: hold, includeVolumes: true },
        {
          hashEntries: true,
          migration: { id: migration.id },
          onFreeze: () => (frozenAt = clock.now()),
          ...(hold ? { heldBy: migration.id } : {}),
          ...(diskSince ? { diskSince } : {}),
          ...(pageServer
            ? {
                lazyPages: {
                  server: pageServer,
                  onPages: (pages: ServedPages) => ctx.pages.set(migration.id, pages),
                },
              }
            : {}),
        },
      ),
    );
    if (hold) ctx.heldFrozen.add(migration.id);
    migration.checkpointId = checkpoint.id;
    migration.bytesTotal = (migration.precopy?.bytes ?? 0) + checkpoint.sizeBytes;
    failedIn = 'stream';
    const imported = await recordPhase(ctx, migration, 'stream', () =>
      sendCheckpoint(ctx, migration, checkpoint.id, peer, plan.format),
    );
    migration.targetCheckpointId = imported.id;
    failedIn = 'restore';
    const restored = await recordPhase(ctx, migration, 'restore', () =>
      peer.restore(imported.id, body.name ?? container.name, {
        lazyPages: migration.pageServer,
        prepared: migration.precopy?.preparedContainer,
      }),
    );
    migration.downtimeMs = clock.now() - frozenAt;
    if (migration.pageServer) {
      // It runs there, but needs the pages here until the last one has arrived.
      failedIn = 'pages';
      await awaitTargetPages(ctx, migration, peer, body.keepSource);
      return;
    }
    migration.targetContainer = restored.container;
  } catch (err) {
    if (!migration.checkpointId) {
      await dropPreCopy(ctx, migration, peer);
      endMigration(ctx, migration, 'failed', failedIn, err);
      return;
    }
    await settleAfterFailure(ctx, migration, peer, body.keepSource, failedIn, err);
    return;
  }
  await completeOnTarget(ctx, migration, peer, body.keepSource);
}
