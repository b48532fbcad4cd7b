import { statfs } from 'node:fs/promises';
import type { ImageIdentity } from '../domain/manifest.js';
import type { HostInfoReport } from '../domain/migration.js';
import type { CheckpointEngine } from './checkpoint-engine.js';
import type { ContainerRuntime } from './container-runtime.js';
import { localHost } from './host-info.js';

/** What a peer needs to know before sending a checkpoint here. */
export class HostService {
  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly engine: CheckpointEngine,
    private readonly dataDir: string,
  ) {}

  async report(): Promise<HostInfoReport> {
    const [docker, criuVersion, fs] = await Promise.all([
      this.runtime.version(),
      this.engine.version(),
      statfs(this.dataDir),
    ]);
    return { ...localHost(), criuVersion, dockerVersion: docker.version, freeBytes: fs.bavail * fs.bsize };
  }

  async imagePresent(image: ImageIdentity): Promise<boolean> {
    return (await this.runtime.resolveImage(image)) !== undefined;
  }

  loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    return this.runtime.loadImage(tar);
  }
}
