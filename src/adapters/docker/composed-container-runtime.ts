import type { ContainerCriuOptions, RestoredContainer } from '../../domain/checkpoint.js';
import type { ImageIdentity } from '../../domain/manifest.js';
import type {
  CheckpointRequest,
  ContainerCheckpointing,
  ContainerInfo,
  ContainerLifecycle,
  ContainerRestore,
  ContainerRuntime,
  CreateTarget,
  EngineImages,
  EngineInfo,
  LazyRestore,
  PageServerAddress,
  RuntimeCheckpointResult,
  RuntimeVersion,
} from '../../services/ports/container-runtime.js';

/** An engine's capabilities, each a class of its own. */
export interface RuntimeParts {
  engine: EngineInfo;
  containers: ContainerLifecycle;
  dumps: ContainerCheckpointing;
  restores: ContainerRestore;
  images: EngineImages;
}

/** A ContainerRuntime made of its parts: every call goes to the part that does it (Docker's, Podman's). */
export class ComposedContainerRuntime implements ContainerRuntime {
  constructor(private readonly parts: RuntimeParts) {}

  version(): Promise<RuntimeVersion> {
    return this.parts.engine.version();
  }

  inspect(ref: string): Promise<ContainerInfo | undefined> {
    return this.parts.containers.inspect(ref);
  }

  listRestored(checkpointId?: string): Promise<RestoredContainer[]> {
    return this.parts.containers.listRestored(checkpointId);
  }

  createFromConfig(config: unknown, target: CreateTarget): Promise<{ id: string; name: string }> {
    return this.parts.containers.createFromConfig(config, target);
  }

  rename(containerId: string, name: string): Promise<void> {
    return this.parts.containers.rename(containerId, name);
  }

  remove(containerId: string): Promise<void> {
    return this.parts.containers.remove(containerId);
  }

  start(containerId: string): Promise<void> {
    return this.parts.containers.start(containerId);
  }

  stop(containerId: string): Promise<void> {
    return this.parts.containers.stop(containerId);
  }

  putFile(containerId: string, file: string, content: Buffer): Promise<void> {
    return this.parts.containers.putFile(containerId, file, content);
  }

  runtimeSpec(containerId: string): Promise<unknown> {
    return this.parts.containers.runtimeSpec(containerId);
  }

  volumeNames(): Promise<Set<string>> {
    return this.parts.containers.volumeNames();
  }

  checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult> {
    return this.parts.dumps.checkpoint(containerId, request);
  }

  ensureNotFrozen(containerId: string): Promise<void> {
    return this.parts.dumps.ensureNotFrozen(containerId);
  }

  thawFrozen(containerId: string): Promise<void> {
    return this.parts.dumps.thawFrozen(containerId);
  }

  canHoldFrozen(containerId: string): Promise<boolean> {
    return this.parts.dumps.canHoldFrozen(containerId);
  }

  stopFrozen(containerId: string): Promise<void> {
    return this.parts.dumps.stopFrozen(containerId);
  }

  hangUpPageServer(address: PageServerAddress): Promise<void> {
    return this.parts.dumps.hangUpPageServer(address);
  }

  restoresInPlace(containerId: string, criu: ContainerCriuOptions): Promise<boolean> {
    return this.parts.restores.restoresInPlace(containerId, criu);
  }

  restore(
    containerId: string,
    imagesDir: string,
    criu: ContainerCriuOptions,
    lazy?: LazyRestore,
  ): Promise<void> {
    return this.parts.restores.restore(containerId, imagesDir, criu, lazy);
  }

  resumeLazyRestores(): void {
    this.parts.restores.resumeLazyRestores();
  }

  imageExists(ref: string): Promise<boolean> {
    return this.parts.images.imageExists(ref);
  }

  imageLayers(ref: string): Promise<string[] | undefined> {
    return this.parts.images.imageLayers(ref);
  }

  resolveImage(image: ImageIdentity): Promise<string | undefined> {
    return this.parts.images.resolveImage(image);
  }

  saveImage(id: string, name?: string): Promise<NodeJS.ReadableStream> {
    return this.parts.images.saveImage(id, name);
  }

  loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    return this.parts.images.loadImage(tar);
  }
}
