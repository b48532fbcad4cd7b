import type { ImageIdentity } from '../../domain/manifest.js';
import type { HostInfoReport } from '../../domain/migration.js';
import type { CheckpointEngine } from '../ports/checkpoint-engine.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import type { DiskGuard } from '../support/disk-guard.js';
import type { HostInfo } from '../../domain/host-info.js';

/** What a peer needs to know before sending a checkpoint here. */
export class HostService {
  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly engine: CheckpointEngine,
    private readonly guard: DiskGuard,
    private readonly host: HostInfo,
  ) {}

  async report(): Promise<HostInfoReport> {
    const [docker, criuVersion, room, postCopy] = await Promise.all([
      this.runtime.version(),
      this.engine.version(),
      this.guard.room(),
      this.engine.postCopySupport(),
    ]);
    return {
      ...this.host,
      criuVersion,
      dockerVersion: docker.version,
      engine: docker.engine,
      freeBytes: room.freeBytes,
      minFreeBytes: room.floorBytes,
      postCopy: docker.cryoRuntime
        ? postCopy
        : {
            ok: false,
            reason:
              docker.engine === 'podman'
                ? 'its cryo manages Podman, where it does no lazy restores'
                : `its dockerd lacks cryo's runtime, which a lazy restore needs (run native-scripts/setup-host.sh there)${postCopy.ok ? '' : `; ${postCopy.reason ?? 'no lazy pages'}`}`,
          },
    };
  }

  async imagePresent(image: ImageIdentity): Promise<boolean> {
    return (await this.runtime.resolveImage(image)) !== undefined;
  }

  loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    return this.runtime.loadImage(tar);
  }
}
