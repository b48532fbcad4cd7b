import type { Checkpoint } from '../../domain/checkpoint.js';
import {
  CheckpointNameInUseError,
  ContainerNotFoundError,
  ContainerNotRunningError,
} from '../../domain/errors/index.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import { newId } from '../support/ids.js';
import type { CheckpointContext } from './context.js';

/** A checkpoint about to be taken: its container, locked until `release`, and its id and name. */
export interface CheckpointStart {
  container: ContainerInfo;
  id: string;
  name: string;
  started: number;
  release: () => void;
}

/** Locks the running container `ref` for a checkpoint named `name` (default `checkpoint-<id>`). */
export async function beginCheckpoint(
  ctx: CheckpointContext,
  ref: string,
  name: string | undefined,
): Promise<CheckpointStart> {
  const started = ctx.clock.now();
  const container = await ctx.runtime.inspect(ref);
  if (!container) throw new ContainerNotFoundError(ref);
  // Lock before looking at the state: a container being dumped shows as paused for a while.
  const release = ctx.locks.acquire(container.id, 'checkpoint', `container "${container.name}"`);
  try {
    if (!container.running || container.paused) throw new ContainerNotRunningError(ref, container.state);
    const id = newId(started);
    const chosen = name ?? `checkpoint-${id}`;
    if (ctx.catalog.findByName(container.id, chosen))
      throw new CheckpointNameInUseError(container.name, chosen);
    return { container, id, name: chosen, started, release };
  } catch (err) {
    release();
    throw err;
  }
}

/** The catalog record of the checkpoint that `start` began, complete; `fields` say what it holds. */
export function checkpointRecord(
  { id, name, container }: Pick<CheckpointStart, 'id' | 'name' | 'container'>,
  createdAt: Date,
  fields: Pick<Checkpoint, 'leaveRunning' | 'sizeBytes' | 'stats'> & Partial<Checkpoint>,
): Checkpoint {
  return {
    id,
    name,
    kind: 'container',
    container: { id: container.id, name: container.name, image: container.image },
    createdAt: createdAt.toISOString(),
    status: 'complete',
    ...fields,
  };
}
