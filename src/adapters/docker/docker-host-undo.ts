import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HostIntentKind, type HostIntent } from '../../domain/host-intent.js';
import type { HostStateUndo } from '../../services/host-journal.js';
import { CONTAINERD_LEFTOVER_PREFIX } from './containerd-leftovers.js';
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
        if (intent.before === null) await rm(intent.file, { force: true });
        else await writeFile(intent.file, intent.before);
        return;
      case HostIntentKind.RESTART_POLICY:
        await this.client.callOr(
          (d) => d.getContainer(intent.containerId).update({ RestartPolicy: intent.policy }),
          [404],
          undefined,
        );
        return;
      case HostIntentKind.DOCKER_CHECKPOINT:
        await this.client
          .checkpointApi(intent.containerId)
          .deleteCheckpoint(intent.checkpointName)
          .catch(() => undefined);
        await rm(intent.dir, { recursive: true, force: true });
        return;
      case HostIntentKind.CONTAINERD_TMP: {
        const before = new Set(intent.before);
        const now = await readdir(intent.tmpDir).catch(() => [] as string[]);
        await Promise.all(
          now
            .filter((d) => d.startsWith(CONTAINERD_LEFTOVER_PREFIX) && !before.has(d))
            .map((d) => rm(path.join(intent.tmpDir, d), { recursive: true, force: true })),
        );
        return;
      }
      case HostIntentKind.FROZEN:
        await this.ensureNotFrozen(intent.containerId);
        return;
      case HostIntentKind.STOP_MODE_CHECKPOINT:
        throw new Error('a stop-mode checkpoint is recovered by the service, which knows the catalog');
    }
  }
}
