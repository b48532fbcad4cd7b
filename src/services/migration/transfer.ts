import { Transform } from 'node:stream';
import type { ArchiveFormat, Checkpoint } from '../../domain/checkpoint.js';
import type { CreateMigrationBody, Migration } from '../../domain/migration.js';
import { logged } from '../support/background.js';
import type { CreateCheckpointInternals } from '../checkpoint/checkpoint-service.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import type { PeerAgent } from '../ports/peer-agent.js';
import { seedName, type MigrationContext } from './context.js';
import { publish } from './records.js';

/** Streams a checkpoint into the target's import, counting the bytes sent. */
export async function sendCheckpoint(
  ctx: MigrationContext,
  migration: Migration,
  checkpointId: string,
  peer: PeerAgent,
  format: ArchiveFormat = 'cryo',
): Promise<Checkpoint> {
  const archive = await ctx.deps.archives.export(checkpointId, 'none', { format });
  const counted = archive.stream.pipe(
    new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        migration.bytesSent += chunk.length;
        cb(null, chunk);
      },
    }),
  );
  try {
    return await peer.importArchive(counted, migration.id);
  } finally {
    // Ends the export's hold on the checkpoint even when the target never read the stream.
    archive.stream.destroy();
  }
}

/**
 * Disk pre-copy, while the container runs: its root-filesystem changes and volumes go to the target as a seed
 * checkpoint, and the target creates and fills the container from it. The checkpoint then sends what changed.
 */
export async function preCopyDisk(
  ctx: MigrationContext,
  migration: Migration,
  container: ContainerInfo,
  peer: PeerAgent,
  body: CreateMigrationBody,
): Promise<NonNullable<CreateCheckpointInternals['diskSince']>> {
  const name = seedName(migration);
  const seed = await ctx.deps.checkpoints.createDiskSeed(container.id, name, { id: migration.id });
  migration.precopy = { checkpointId: seed.checkpoint.id, bytes: seed.checkpoint.sizeBytes };
  migration.bytesTotal = seed.checkpoint.sizeBytes;
  publish(ctx, migration);
  const there = await sendCheckpoint(ctx, migration, seed.checkpoint.id, peer);
  migration.precopy.targetCheckpointId = there.id;
  publish(ctx, migration);
  const prepared = await peer.prepare(there.id, body.name ?? container.name);
  migration.precopy.preparedContainer = prepared.container.id;
  return { seed: name, index: seed.index };
}

/**
 * Best effort: a disk pre-copy's seed goes from both hosts (on the target, with the container prepared from it
 * unless a restore has used it); after a success, the target's changes checkpoint too, which nothing restores.
 * What is left ages out with each side's sweeper.
 */
export async function dropPreCopy(
  ctx: MigrationContext,
  migration: Migration,
  peer: PeerAgent,
  succeeded = false,
): Promise<void> {
  const precopy = migration.precopy;
  if (!precopy) return;
  const there = [precopy.targetCheckpointId, succeeded ? migration.targetCheckpointId : undefined];
  for (const id of there)
    if (id)
      await peer
        .deleteCheckpoint(id)
        .catch(logged(ctx.log, `deleting the target's pre-copy checkpoint ${id}`));
  await ctx.deps.checkpoints
    .remove(precopy.checkpointId)
    .catch(logged(ctx.log, `deleting the pre-copy seed ${precopy.checkpointId}`));
}
