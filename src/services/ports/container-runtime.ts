import type { ContainerCriuOptions, RestoredContainer } from '../../domain/checkpoint.js';
import type { CriuStats } from '../../domain/criu-stats.js';
import type { ImageIdentity } from '../../domain/manifest.js';

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
  /** Whether it runs on a console of its own (`docker run -t`), which the runtime hands CRIU as external. */
  tty: boolean;
  /** The engine's full description of the container, kept as config.dump. */
  config: unknown;
}

export interface RuntimeVersion {
  version: string;
  experimental: boolean;
  storageDriver: string;
  /** Whether images live in containerd's image store (Docker's containerd-snapshotter feature). */
  containerdStore: boolean;
  /** Whether dockerd lists cryo's OCI runtime. */
  cryoRuntime: boolean;
  defaultRuntime: string;
  /**
   * How a container that cryo creates is restored; 'none' where neither path works for a container's own network;
   * 'podman': Podman's own restore API.
   */
  restorePath: 'cryo-runtime' | 'docker-checkpoint' | 'podman' | 'none';
  /** Which engine this is. */
  engine: 'docker' | 'podman';
}

/** Where a page server listens for a migration's lazy pages. */
export interface PageServerAddress {
  address: string;
  port: number;
}

export interface CheckpointRequest {
  /** The checkpoint's name inside the engine. */
  checkpointId: string;
  /** Directory under which the engine writes `<checkpointId>/` with the CRIU images. */
  parentDir: string;
  /** Stop the container after the dump (false: it keeps running). */
  exit: boolean;
  /** With exit false: return with the container still frozen, until the result's `thaw`. */
  holdFrozen?: boolean;
  /**
   * With holdFrozen: the migration that keeps the container frozen past this call and ends the freeze itself
   * (stopFrozen, or ensureNotFrozen); host recovery leaves such a freeze to it.
   */
  heldBy?: string;
  /**
   * With heldBy: dump everything but the memory pages, and serve those from the frozen tasks here (post-copy);
   * the call returns once the page server listens.
   */
  lazyPages?: PageServerAddress;
  criu: ContainerCriuOptions;
}

export interface RuntimeCheckpointResult {
  /** CRIU's own statistics, when the engine's path keeps them. */
  stats: CriuStats;
  /** 'runc': dumped straight through the OCI runtime; 'docker', 'podman': through the engine's checkpoint API. */
  path: 'runc' | 'docker' | 'podman';
  /**
   * Resolves once the engine's own view agrees with the dump (a stopped container shows as exited, its restart
   * policy is back); the images are complete before that, so the caller can store them meanwhile.
   */
  settled: Promise<void>;
  /** Ends a freeze that `holdFrozen` kept (a no-op otherwise, or where the engine's path cannot keep it). */
  thaw: () => Promise<void>;
  /** With lazyPages: ends when the page server has stopped (see LazyCheckpoint.served), and ends it early. */
  pages?: { served: Promise<void>; abort: () => Promise<void> };
}

/** A restore whose memory pages come from a page server, on fault and in the background (post-copy). */
export interface LazyRestore extends PageServerAddress {
  /** The longest the pages may take; a restore whose pages have not all arrived by then is killed. */
  timeoutSeconds: number;
}

export interface CreateTarget {
  name: string;
  labels: Record<string, string>;
  /** 'free': published ports take free host ports; 'same': the original's. */
  ports: 'same' | 'free';
  imageId: string;
  /** Mount the original's volumes, anonymous ones too, instead of new ones (a container that replaces it). */
  keepVolumes: boolean;
}

/** What the engine is and can do. */
export interface EngineInfo {
  version(): Promise<RuntimeVersion>;
}

/** Containers themselves: find, create, start, stop, remove. */
export interface ContainerLifecycle {
  /** Resolves an id, unique id prefix or name; undefined when no container matches. */
  inspect(ref: string): Promise<ContainerInfo | undefined>;
  /** Containers that cryo created for a restore, from one checkpoint or any. */
  listRestored(checkpointId?: string): Promise<RestoredContainer[]>;
  /** Creates (does not start) a container from another container's config (`docker inspect` output). */
  createFromConfig(config: unknown, target: CreateTarget): Promise<{ id: string; name: string }>;
  /** Renames a container, running or not. */
  rename(containerId: string, name: string): Promise<void>;
  remove(containerId: string): Promise<void>;
  /** Starts a created or stopped container afresh (no checkpoint). */
  start(containerId: string): Promise<void>;
  /** Stops a running container (SIGTERM, then SIGKILL after the engine's grace period). */
  stop(containerId: string): Promise<void>;
  /** Writes one file into a container's root filesystem (created or stopped), creating its directories. */
  putFile(containerId: string, file: string, content: Buffer): Promise<void>;
  /** The OCI runtime spec the container runs with (while it runs), or undefined. */
  runtimeSpec(containerId: string): Promise<unknown>;
  volumeNames(): Promise<Set<string>>;
}

/** Dumps, and the freeze around them. */
export interface ContainerCheckpointing {
  /** Dumps the container with CRIU; throws CriuError with CRIU's log tail on failure. */
  checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult>;
  /** Makes sure the container is neither paused nor frozen (after a checkpoint, failed or not). */
  ensureNotFrozen(containerId: string): Promise<void>;
  /** Thaws, at once, a container that a dump keeps frozen (heldBy): it runs on where it froze. */
  thawFrozen(containerId: string): Promise<void>;
  /** Whether a checkpoint of this container can keep it frozen after the dump (holdFrozen). */
  canHoldFrozen(containerId: string): Promise<boolean>;
  /**
   * Stops a container that a dump keeps frozen, without letting it run again: its processes are killed while
   * frozen, then thawed, and die; resolves once the engine shows it exited (its restart policy held meanwhile).
   */
  stopFrozen(containerId: string): Promise<void>;
  /**
   * Ends a lazy dump's page server that this process no longer holds (a cryo restarted meanwhile): a connection
   * that hangs up at once ends CRIU's serving, and with --leave-running CRIU leaves the tasks frozen.
   */
  hangUpPageServer(address: PageServerAddress): Promise<void>;
}

/** Restores from CRIU's images. */
export interface ContainerRestore {
  /**
   * Whether this container can be restored in place with these options; false when it can only be replaced by a
   * new container of the same name and config (a runtime that cannot restore it in place).
   */
  restoresInPlace(containerId: string, criu: ContainerCriuOptions): Promise<boolean>;
  /**
   * Starts a created or stopped container from the CRIU images in `imagesDir`, with the dump's CRIU options; with
   * `lazy`, its memory pages come from a page server while it runs, and it is killed should they stop coming.
   */
  restore(
    containerId: string,
    imagesDir: string,
    criu: ContainerCriuOptions,
    lazy?: LazyRestore,
  ): Promise<void>;
  /**
   * After a restart: watches again the lazy restores that a crash interrupted, and puts each one's restart policy
   * back once its pages are all in (never for a container killed for want of them).
   */
  resumeLazyRestores(): void;
}

/** The engine's images. */
export interface EngineImages {
  imageExists(ref: string): Promise<boolean>;
  /** The diff ids of an image's layers; undefined when there is no such image. */
  imageLayers(ref: string): Promise<string[] | undefined>;
  /**
   * This host's id of the image: the same id, or an image of the same name or any other with the same layers
   * (another image store names the same image otherwise); undefined when this host has none of them.
   */
  resolveImage(image: ImageIdentity): Promise<string | undefined>;
  /**
   * The image `id` as a `docker save` tar stream; with `name`, while that name is still the image's, the tar names
   * it too, so that a load on another host tags it (saved by id, it loads untagged).
   */
  saveImage(id: string, name?: string): Promise<NodeJS.ReadableStream>;
  /** Loads a `docker save` tar stream. */
  loadImage(tar: NodeJS.ReadableStream): Promise<void>;
}

/** A container engine, every capability cryo uses. */
export interface ContainerRuntime
  extends EngineInfo, ContainerLifecycle, ContainerCheckpointing, ContainerRestore, EngineImages {}
