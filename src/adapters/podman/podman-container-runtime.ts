import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerInfo } from '../../services/ports/container-runtime.js';
import type { ForeignImages } from '../../services/ports/foreign-images.js';
import type { HostJournal } from '../../services/ports/host-journal.js';
import type { Logger } from '../../services/ports/logger.js';
import { ComposedContainerRuntime } from '../docker/composed-container-runtime.js';
import { CryoRuntimeRestore } from '../docker/cryo-runtime-restore.js';
import type { DockerClient } from '../docker/docker-client.js';
import { DockerImages } from '../docker/docker-images.js';
import { DockerLifecycle } from '../docker/docker-lifecycle.js';
import type { LibpodClient } from './libpod-client.js';
import { PODMAN_RUNTIME_SPEC, podmanBundle } from './podman-bundle.js';
import { PodmanCheckpointing } from './podman-checkpointing.js';
import { PodmanEngineInfo } from './podman-engine-info.js';
import { PodmanRestore } from './podman-restore.js';

export interface PodmanContainerRuntimeOptions {
  /** Where cryo's OCI runtime keeps its state (read only: Podman's containers never run under it). */
  runtimeStateDir?: string;
  /** What restoring images Docker dumped needs (a migration from a Docker host, an import of Docker's checkpoint). */
  foreign?: ForeignImages;
  log?: Logger;
}

/**
 * Containers run by Podman (`podman system service`): their life cycle and images through its Docker-compatible
 * API (`client`, on Podman's socket), their checkpoints and restores through libpod's own API (`libpod`).
 */
export class PodmanContainerRuntime extends ComposedContainerRuntime {
  constructor(
    client: DockerClient,
    private readonly libpod: LibpodClient,
    journal: HostJournal,
    options: PodmanContainerRuntimeOptions = {},
  ) {
    const engine = new PodmanEngineInfo(libpod);
    const markers = new CryoRuntimeRestore(client, journal, options.runtimeStateDir, options.log);
    super({
      engine,
      // No exec root: the runtime spec is read from Podman's bundle (runtimeSpec below).
      containers: new DockerLifecycle(client, engine, markers, ''),
      dumps: new PodmanCheckpointing(client, libpod),
      restores: new PodmanRestore(libpod, options.foreign),
      images: new DockerImages(client),
    });
  }

  /** Docker's view of the container, with the OCI runtime's own name (Podman's compatible API says "oci"). */
  override async inspect(ref: string): Promise<ContainerInfo | undefined> {
    const info = await super.inspect(ref);
    if (!info) return undefined;
    const bundle = await podmanBundle(this.libpod, info.id).catch(() => undefined);
    const config = info.config as { HostConfig?: { Runtime?: string } };
    if (bundle?.OCIRuntime && config.HostConfig) config.HostConfig.Runtime = bundle.OCIRuntime;
    return info;
  }

  override async runtimeSpec(containerId: string): Promise<unknown> {
    const bundle = await podmanBundle(this.libpod, containerId).catch(() => undefined);
    if (!bundle) return undefined;
    const text = await readFile(path.join(bundle.StaticDir, PODMAN_RUNTIME_SPEC), 'utf8').catch(
      () => undefined,
    );
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  }
}
