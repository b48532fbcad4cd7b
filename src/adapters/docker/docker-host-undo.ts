import { HostIntentKind, type HostIntent } from '../../domain/host-intent.js';
import type { HostStateUndo } from '../../services/ports/host-journal.js';
import { removeDockerCheckpoint } from './checkpoint-dir.js';
import { removeTmpCopiesSince } from './containerd-leftovers.js';
import { removeRuntimeMarker } from './cryo-runtime-restore.js';
import { waitForOrphanDumps } from './orphan-dumps.js';
import { putBackFile } from './restore-options.js';
import type { DockerClient } from './docker-client.js';

/** Puts back what an interrupted Docker or CRIU operation of cryo's left changed on the host. */
export class DockerHostUndo implements HostStateUndo {
  constructor(
    private readonly client: DockerClient,
    private readonly ensureNotFrozen: (containerId: string) => Promise<void>,
  ) {}

  async undo(intent: HostIntent): Promise<void> {
    switch (intent.kind) {
      case HostIntentKind.CRIU_CONFIG:
        await putBackFile(intent.file, intent.before);
        return;
      case HostIntentKind.RUNTIME_MARKER:
        await removeRuntimeMarker(intent.dir);
        return;
      case HostIntentKind.RESTART_POLICY:
        await this.client.callOr(
          (d) => d.getContainer(intent.containerId).update({ RestartPolicy: intent.policy }),
          [404],
          undefined,
        );
        return;
      case HostIntentKind.DOCKER_CHECKPOINT:
        await removeDockerCheckpoint(this.client, intent.containerId, intent.checkpointName, intent.dir);
        return;
      case HostIntentKind.CONTAINERD_TMP:
        await removeTmpCopiesSince(intent.tmpDir, intent.before);
        return;
      case HostIntentKind.FROZEN:
        await waitForOrphanDumps(intent.containerId);
        await this.ensureNotFrozen(intent.containerId);
        return;
      case HostIntentKind.STOP_MODE_CHECKPOINT:
      case HostIntentKind.RESTORE_TARGET:
      case HostIntentKind.RESTORE_TARGET_CREATING:
      case HostIntentKind.REPLACEMENT_NAME:
      case HostIntentKind.MIGRATION_SOURCE:
        throw new Error(
          `${intent.kind} is recovered by the service, which knows the catalog and the runtime`,
        );
    }
  }
}
