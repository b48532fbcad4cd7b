/** What cryo needs from a container engine to checkpoint and restore containers. */
export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  imageId: string;
  running: boolean;
  paused: boolean;
  /** Docker's state word: created, running, paused, restarting, removing, exited or dead. */
  state: string;
  pid: number;
  /** The engine's full description of the container, kept as config.dump. */
  config: unknown;
}

export interface RuntimeVersion {
  version: string;
  experimental: boolean;
}

export interface CheckpointRequest {
  /** The checkpoint's name inside the engine. */
  checkpointId: string;
  /** Directory under which the engine writes `<checkpointId>/` with the CRIU images. */
  parentDir: string;
  /** Stop the container after the dump (false: it keeps running). */
  exit: boolean;
}

export interface ContainerRuntime {
  version(): Promise<RuntimeVersion>;
  /** Resolves an id, unique id prefix or name; undefined when no container matches. */
  inspect(ref: string): Promise<ContainerInfo | undefined>;
  /** Dumps the container with CRIU; throws CriuError with CRIU's log tail on failure. */
  checkpoint(containerId: string, request: CheckpointRequest): Promise<void>;
  /** Makes sure the container is neither paused nor frozen (after a checkpoint, failed or not). */
  ensureNotFrozen(containerId: string): Promise<void>;
  /** Creates (does not start) a container named `name` from another container's config. */
  createFromConfig(
    config: unknown,
    name: string,
    labels: Record<string, string>,
    ports?: 'same' | 'free',
  ): Promise<{ id: string; name: string }>;
  /** Starts a created or stopped container from the CRIU images in `imagesDir`. */
  restore(containerId: string, imagesDir: string): Promise<void>;
  remove(containerId: string): Promise<void>;
  /** The OCI runtime spec the container runs with (while it runs), or undefined. */
  runtimeSpec(containerId: string): Promise<unknown>;
  imageExists(ref: string): Promise<boolean>;
  /** The image as a `docker save` tar stream. */
  saveImage(ref: string): Promise<NodeJS.ReadableStream>;
  /** Loads a `docker save` tar stream. */
  loadImage(tar: NodeJS.ReadableStream): Promise<void>;
  volumeNames(): Promise<Set<string>>;
}
