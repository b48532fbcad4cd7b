import { ContainerNotFoundError, ContainerNotRunningError } from '../../domain/errors/index.js';
import { operatorsOf, type OperatorsView } from '../../domain/sidecar/metadata.js';
import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import type { SidecarService } from './sidecar-service.js';

/** What the stream job inside a container registers, and its latest checkpoint with operator state. */
export async function jobOperators(
  deps: { runtime: ContainerRuntime; catalog: CheckpointCatalog; sidecar: SidecarService },
  ref: string,
): Promise<OperatorsView> {
  const container = await deps.runtime.inspect(ref);
  if (!container) throw new ContainerNotFoundError(ref);
  if (!container.running || container.paused) throw new ContainerNotRunningError(ref, container.state);
  const register = await deps.sidecar.describe(container.pid);
  const last = deps.catalog
    .list({ container: container.id })
    .filter((c) => c.application?.job === register.job)
    .at(-1);
  return {
    job: register.job,
    maxParallelism: register.maxParallelism,
    finished: register.finished,
    lastCheckpointId: register.lastCheckpointId,
    committedCheckpointId: register.committedCheckpointId,
    operators: operatorsOf(register),
    ...(last?.application
      ? {
          lastCompleted: {
            checkpoint: last.id,
            checkpointId: last.application.checkpointId,
            createdAt: last.createdAt,
          },
        }
      : {}),
  };
}
