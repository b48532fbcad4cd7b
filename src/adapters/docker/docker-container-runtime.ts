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
import type { CommandDeadline } from '../exec/run-command.js';
import { CgroupFreezer } from './cgroup-freezer.js';
import { ContainerdCtl } from './containerd-ctl.js';
import { ContainerdLeftovers } from './containerd-leftovers.js';
import { CryoRuntimeRestore } from './cryo-runtime-restore.js';
import type { DockerClient } from './docker-client.js';
import { DockerCheckpointing } from './docker-checkpointing.js';
import { DockerEngineInfo } from './docker-engine-info.js';
import { DockerImages } from './docker-images.js';
import { DockerLifecycle } from './docker-lifecycle.js';
import { DockerRestore } from './docker-restore.js';
import { RuncCheckpointer } from './runc-checkpointer.js';
import { RuncDump } from './runc-dump.js';

export interface DockerContainerRuntimeOptions {
  /** containerd's socket for this dockerd; found under dockerd's exec root when not given. */
  containerdSocket?: string;
  /** Where containerd unpacks a checkpoint for a restore. */
  containerdTmpDir?: string;
  /** dockerd's --exec-root (default /var/run/docker), where the runtime bundles live. */
  execRoot?: string;
  /** The runc binary for direct dumps (default: runc on PATH). */
  runc?: string;
  /** Dump through Docker's checkpoint API even where runc could be driven directly. */
  dockerCheckpointApi?: boolean;
  /** Where cryo's OCI runtime finds pending-restore markers (its CRYO_RUNTIME_STATE). */
  runtimeStateDir?: string;
  /** How long a lazy dump may take to start serving its pages while the workload is frozen. */
  lazyDumpTimeoutMs?: number;
  /** The deadline of the helper commands (ctr). */
  commandDeadline?: CommandDeadline;
  /** Where failures that the runtime swallows (a thaw, a restart policy put back in the background) are logged. */
  log?: Logger;
}

/**
 * Containers run by dockerd, each capability a class of its own (docker-*.ts): its API for their life cycle and
 * images, runc for dumps, and for restores cryo's OCI runtime (native-scripts/cryo-runtime), or
 * `docker start --checkpoint` for a runc container where that still works.
 */
export class DockerContainerRuntime implements ContainerRuntime {
  private readonly engine: DockerEngineInfo;
  private readonly containers: DockerLifecycle;
  private readonly dumps: DockerCheckpointing;
  private readonly restores: DockerRestore;
  private readonly images: DockerImages;

  constructor(client: DockerClient, journal: HostJournal, options: DockerContainerRuntimeOptions = {}) {
    const execRoot = options.execRoot ?? '/var/run/docker';
    const freezer = new CgroupFreezer(options.log);
    const runc = new RuncCheckpointer(options.runc);
    const runtimeRestore = new CryoRuntimeRestore(client, journal, options.runtimeStateDir, options.log);
    this.engine = new DockerEngineInfo(client);
    this.containers = new DockerLifecycle(client, this.engine, runtimeRestore, execRoot);
    const runcDump = new RuncDump(
      client,
      runc,
      journal,
      async (id) => Boolean((await this.containers.inspect(id))?.running),
      freezer,
      options.lazyDumpTimeoutMs,
    );
    this.dumps = new DockerCheckpointing(
      client,
      this.containers,
      runc,
      runcDump,
      freezer,
      execRoot,
      options.dockerCheckpointApi ?? false,
    );
    const leftovers = new ContainerdLeftovers(
      new ContainerdCtl(execRoot, options.containerdSocket, options.commandDeadline),
      journal,
      options.containerdTmpDir,
    );
    this.restores = new DockerRestore(client, journal, this.engine, runtimeRestore, leftovers);
    this.images = new DockerImages(client);
  }

  version(): Promise<RuntimeVersion> {
    return this.engine.version();
  }

  inspect(ref: string): Promise<ContainerInfo | undefined> {
    return this.containers.inspect(ref);
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

  runtimeSpec(containerId: string): Promise<unknown> {
    return this.containers.runtimeSpec(containerId);
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

  canHoldFrozen(containerId: string): Promise<boolean> {
    return this.dumps.canHoldFrozen(containerId);
  }

  stopFrozen(containerId: string): Promise<void> {
    return this.dumps.stopFrozen(containerId);
  }

  hangUpPageServer(address: PageServerAddress): Promise<void> {
    return this.dumps.hangUpPageServer(address);
  }

  restoresInPlace(containerId: string, criu: ContainerCriuOptions): Promise<boolean> {
    return this.restores.restoresInPlace(containerId, criu);
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
