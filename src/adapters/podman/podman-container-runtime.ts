import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerCriuOptions, RestoredContainer } from '../../domain/checkpoint.js';
import type { ImageIdentity } from '../../domain/manifest.js';
import type {
  CheckpointRequest,
  ContainerInfo,
  ContainerRuntime,
  CreateTarget,
  LazyRestore,
  PageServerAddress,
  RuntimeCheckpointResult,
  RuntimeVersion,
} from '../../services/ports/container-runtime.js';
import type { HostJournal } from '../../services/ports/host-journal.js';
import type { Logger } from '../../services/ports/logger.js';
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
  log?: Logger;
}

/**
 * Containers run by Podman (`podman system service`): their life cycle and images through its Docker-compatible
 * API (`client`, on Podman's socket), their checkpoints and restores through libpod's own API (`libpod`).
 */
export class PodmanContainerRuntime implements ContainerRuntime {
  private readonly engine: PodmanEngineInfo;
  private readonly containers: DockerLifecycle;
  private readonly dumps: PodmanCheckpointing;
  private readonly restores: PodmanRestore;
  private readonly images: DockerImages;

  constructor(
    client: DockerClient,
    private readonly libpod: LibpodClient,
    journal: HostJournal,
    options: PodmanContainerRuntimeOptions = {},
  ) {
    this.engine = new PodmanEngineInfo(libpod);
    const markers = new CryoRuntimeRestore(client, journal, options.runtimeStateDir, options.log);
    // No exec root: the runtime spec is read from Podman's bundle (runtimeSpec below).
    this.containers = new DockerLifecycle(client, this.engine, markers, '');
    this.dumps = new PodmanCheckpointing(client, libpod);
    this.restores = new PodmanRestore(libpod);
    this.images = new DockerImages(client);
  }

  version(): Promise<RuntimeVersion> {
    return this.engine.version();
  }

  /** Docker's view of the container, with the OCI runtime's own name (Podman's compatible API says "oci"). */
  async inspect(ref: string): Promise<ContainerInfo | undefined> {
    const info = await this.containers.inspect(ref);
    if (!info) return undefined;
    const bundle = await podmanBundle(this.libpod, info.id).catch(() => undefined);
    const config = info.config as { HostConfig?: { Runtime?: string } };
    if (bundle?.OCIRuntime && config.HostConfig) config.HostConfig.Runtime = bundle.OCIRuntime;
    return info;
  }

  listRestored(checkpointId?: string): Promise<RestoredContainer[]> {
    return this.containers.listRestored(checkpointId);
  }

  createFromConfig(config: unknown, target: CreateTarget): Promise<{ id: string; name: string }> {
    return this.containers.createFromConfig(config, target);
  }

  rename(containerId: string, name: string): Promise<void> {
    return this.containers.rename(containerId, name);
  }

  remove(containerId: string): Promise<void> {
    return this.containers.remove(containerId);
  }

  start(containerId: string): Promise<void> {
    return this.containers.start(containerId);
  }

  stop(containerId: string): Promise<void> {
    return this.containers.stop(containerId);
  }

  putFile(containerId: string, file: string, content: Buffer): Promise<void> {
    return this.containers.putFile(containerId, file, content);
  }

  async runtimeSpec(containerId: string): Promise<unknown> {
    const bundle = await podmanBundle(this.libpod, containerId).catch(() => undefined);
    if (!bundle) return undefined;
    const text = await readFile(path.join(bundle.StaticDir, PODMAN_RUNTIME_SPEC), 'utf8').catch(
      () => undefined,
    );
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  }

  volumeNames(): Promise<Set<string>> {
    return this.containers.volumeNames();
  }

  checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult> {
    return this.dumps.checkpoint(containerId, request);
  }

  ensureNotFrozen(containerId: string): Promise<void> {
    return this.dumps.ensureNotFrozen(containerId);
  }

  thawFrozen(containerId: string): Promise<void> {
    return this.dumps.thawFrozen(containerId);
  }

  canHoldFrozen(): Promise<boolean> {
    return this.dumps.canHoldFrozen();
  }

  stopFrozen(): Promise<void> {
    return this.dumps.stopFrozen();
  }

  hangUpPageServer(address: PageServerAddress): Promise<void> {
    return this.dumps.hangUpPageServer(address);
  }

  restoresInPlace(): Promise<boolean> {
    return this.restores.restoresInPlace();
  }

  restore(
    containerId: string,
    imagesDir: string,
    criu: ContainerCriuOptions,
    lazy?: LazyRestore,
  ): Promise<void> {
    return this.restores.restore(containerId, imagesDir, criu, lazy);
  }

  resumeLazyRestores(): void {
    this.restores.resumeLazyRestores();
  }

  imageExists(ref: string): Promise<boolean> {
    return this.images.imageExists(ref);
  }

  imageLayers(ref: string): Promise<string[] | undefined> {
    return this.images.imageLayers(ref);
  }

  resolveImage(image: ImageIdentity): Promise<string | undefined> {
    return this.images.resolveImage(image);
  }

  saveImage(ref: string): Promise<NodeJS.ReadableStream> {
    return this.images.saveImage(ref);
  }

  loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    return this.images.loadImage(tar);
  }
}
