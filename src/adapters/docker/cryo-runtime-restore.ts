import { access, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import { DockerError } from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import { DEFAULT_RUNTIME_STATE_DIR } from '../../defaults.js';
import type { HostJournal } from '../../services/host-journal.js';
import { criuLogFailure } from '../criu/log-tail.js';
import { checkpointError } from './checkpoint-error.js';
import type { DockerClient } from './docker-client.js';
import { runcCriuFlags } from './runc-checkpointer.js';

/** The runtime name cryo's OCI runtime (native-scripts/cryo-runtime) is registered under in daemon.json. */
export const CRYO_RUNTIME = 'cryo';

/** The names inside a marker, as native-scripts/cryo-runtime reads them. */
const Marker = {
  IMAGES: 'images',
  WORK: 'work',
  FLAGS: 'flags',
  CRIU_CONF: 'criu.conf',
  ADDRESSES: 'addresses',
  RESTORED: 'restored',
  RESTORE_LOG: 'restore.log',
} as const;

/** A file of one value a line, as the runtime's `read` loops take them. */
function asLines(values: string[]): string {
  return values.map((v) => `${v}\n`).join('');
}

/** Removes a marker; also after a crash. */
export async function removeRuntimeMarker(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Restores through cryo's runtime: a marker keyed by the container id tells it to turn dockerd's `create` into
 * `runc restore --detach` from cryo's own images, so a plain `docker start` restores. Nothing is written into
 * Docker's or containerd's directories, nor into /etc/criu/runc.conf: the CRIU options go with the marker.
 */
export class CryoRuntimeRestore {
  constructor(
    private readonly client: DockerClient,
    private readonly journal: HostJournal,
    private readonly stateDir = DEFAULT_RUNTIME_STATE_DIR,
  ) {}

  async restore(
    containerId: string,
    imagesDir: string,
    criu: ContainerCriuOptions,
    criuConfig: string[],
    addresses: string[],
  ): Promise<void> {
    const marker = path.join(this.stateDir, containerId);
    const intent = this.journal.begin({ kind: HostIntentKind.RUNTIME_MARKER, dir: marker });
    try {
      await removeRuntimeMarker(marker);
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
      await mkdir(path.join(marker, Marker.WORK), { recursive: true, mode: 0o700 });
      await writeFile(path.join(marker, Marker.FLAGS), asLines(runcCriuFlags(criu)));
      if (criuConfig.length > 0) await writeFile(path.join(marker, Marker.CRIU_CONF), asLines(criuConfig));
      if (addresses.length > 0) await writeFile(path.join(marker, Marker.ADDRESSES), asLines(addresses));
      // Written last: the runtime acts on a marker only once its images are there.
      await symlink(imagesDir, path.join(marker, Marker.IMAGES));
      try {
        await this.client.call(() => this.client.container(containerId).start());
      } catch (err) {
        throw await this.failure(marker, err);
      }
      const restored = await access(path.join(marker, Marker.RESTORED)).then(
        () => true,
        () => false,
      );
      if (!restored) {
        // The container started afresh: it does not run under cryo's runtime after all.
        await this.client.callOr((d) => d.getContainer(containerId).kill(), [404, 409], undefined);
        throw new DockerError(
          `container ${containerId.slice(0, 12)} started without cryo's runtime restoring it; it was stopped again`,
        );
      }
    } finally {
      await removeRuntimeMarker(marker);
      this.journal.end(intent);
    }
  }

  /** CRIU's own log, when the runtime got as far as running it. */
  private async failure(marker: string, err: unknown): Promise<Error> {
    const log = await readFile(path.join(marker, Marker.WORK, Marker.RESTORE_LOG), 'utf8').catch(() => '');
    return log ? criuLogFailure('CRIU restore', log, undefined, err) : checkpointError(err, 'restore');
  }
}
