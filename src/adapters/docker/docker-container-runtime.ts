import { readFile } from 'node:fs/promises';
import type { Logger } from '../../services/logger.js';
import type { CommandDeadline } from '../exec/run-command.js';
import path from 'node:path';
import type Docker from 'dockerode';
import type { ContainerCriuOptions, RestoredContainer } from '../../domain/checkpoint.js';
import { LABEL_RESTORED_FROM } from '../../domain/labels.js';
import { DOCKER_CONFIG } from '../../domain/layout.js';
import type { ImageIdentity } from '../../domain/manifest.js';
import {
  ContainerNameInUseError,
  DockerError,
  ImageInvalidError,
  RestorePathUnavailableError,
} from '../../domain/errors/index.js';
import type {
  CheckpointRequest,
  LazyRestore,
  ContainerInfo,
  ContainerRuntime,
  CreateTarget,
  RuntimeCheckpointResult,
  RuntimeVersion,
} from '../../services/container-runtime.js';
import type { HostJournal } from '../../services/host-journal.js';
import { CgroupFreezer } from './cgroup-freezer.js';
import { CRYO_RUNTIME, CryoRuntimeRestore } from './cryo-runtime-restore.js';
import { checkpointError } from './checkpoint-error.js';
import { withDockerCheckpoint } from './checkpoint-dir.js';
import { ContainerdCtl } from './containerd-ctl.js';
import { ContainerdLeftovers } from './containerd-leftovers.js';
import { toCreateOptions } from './create-options.js';
import { apiMessage, firstLine, type DockerClient } from './docker-client.js';
import { Mutex } from './mutex.js';
import { restoreConfigLines } from './restore-options.js';
import { criuConfigLines, RuncCheckpointer } from './runc-checkpointer.js';
import { RuncDump, sleep } from './runc-dump.js';
import { singleFileTar } from './single-file-tar.js';

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

/** The first Docker whose `start --checkpoint` binds /proc/0/ns/net (moby/moby#50750). */
const FIRST_BROKEN_CHECKPOINT_START = 28;

const CONTENT_EXISTS = /content (sha256:[0-9a-f]{64}): already exists/;

/**
 * Containers run by dockerd: its API for their life cycle, runc for dumps, and for restores cryo's OCI runtime
 * (native-scripts/cryo-runtime), or `docker start --checkpoint` for a runc container where that still works.
 */
export class DockerContainerRuntime implements ContainerRuntime {
  // Restores run one at a time so that each can tell its own containerd leftovers in /tmp from another's.
  private readonly restoreMutex = new Mutex();
  private readonly execRoot: string;
  private readonly runc: RuncCheckpointer;
  private readonly runcDump: RuncDump;
  private readonly leftovers: ContainerdLeftovers;
  private readonly freezer: CgroupFreezer;
  private readonly runtimeRestore: CryoRuntimeRestore;

  constructor(
    private readonly client: DockerClient,
    private readonly journal: HostJournal,
    private readonly options: DockerContainerRuntimeOptions = {},
  ) {
    this.execRoot = options.execRoot ?? '/var/run/docker';
    this.freezer = new CgroupFreezer(options.log);
    this.runc = new RuncCheckpointer(options.runc);
    this.runcDump = new RuncDump(
      client,
      this.runc,
      journal,
      async (id) => Boolean((await this.inspect(id))?.running),
      this.freezer,
      options.lazyDumpTimeoutMs,
    );
    this.runtimeRestore = new CryoRuntimeRestore(client, journal, options.runtimeStateDir, options.log);
    this.leftovers = new ContainerdLeftovers(
      new ContainerdCtl(this.execRoot, options.containerdSocket, options.commandDeadline),
      journal,
      options.containerdTmpDir,
    );
  }

  async version(): Promise<RuntimeVersion> {
    const [v, info] = await Promise.all([
      this.client.call((d) => d.version()),
      this.client.call((d) => d.info() as Promise<DockerInfo>),
    ]);
    const cryoRuntime = Object.hasOwn(info.Runtimes ?? {}, CRYO_RUNTIME);
    const checkpointStart = majorVersion(v.Version) < FIRST_BROKEN_CHECKPOINT_START;
    return {
      version: v.Version,
      experimental: Boolean((v as { Experimental?: boolean }).Experimental),
      storageDriver: info.Driver ?? 'unknown',
      containerdStore: (info.DriverStatus ?? []).some(([k]) => k === 'driver-type'),
      cryoRuntime,
      defaultRuntime: info.DefaultRuntime ?? 'runc',
      restorePath: cryoRuntime ? 'cryo-runtime' : checkpointStart ? 'docker-checkpoint' : 'none',
    };
  }

  async inspect(ref: string): Promise<ContainerInfo | undefined> {
    const raw = await this.client.callOr((d) => d.getContainer(ref).inspect(), [404], undefined);
    if (!raw) return undefined;
    return {
      id: raw.Id,
      name: raw.Name.replace(/^\//, ''),
      image: raw.Config.Image,
      imageId: raw.Image,
      running: raw.State.Running,
      paused: raw.State.Paused,
      state: raw.State.Status,
      pid: raw.State.Pid,
      tty: raw.Config.Tty === true,
      config: raw,
    };
  }

  async listRestored(checkpointId?: string): Promise<RestoredContainer[]> {
    const label = checkpointId === undefined ? LABEL_RESTORED_FROM : `${LABEL_RESTORED_FROM}=${checkpointId}`;
    const list = await this.client.call((d) => d.listContainers({ all: true, filters: { label: [label] } }));
    return Promise.all(
      list.map(async (c) => {
        const pages = await this.runtimeRestore.lazyPages(c.Id);
        return {
          id: c.Id,
          name: (c.Names[0] ?? '').replace(/^\//, ''),
          running: c.State === 'running',
          restoredFrom: c.Labels[LABEL_RESTORED_FROM] ?? '',
          ...(pages ? { pages } : {}),
        };
      }),
    );
  }

  async checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult> {
    const root = await this.runcRoot(containerId);
    if (root) return this.runcDump.dump(root, containerId, request);
    return this.checkpointThroughDocker(containerId, request);
  }

  async thawFrozen(containerId: string): Promise<void> {
    const info = await this.inspect(containerId);
    if (info?.running) await this.freezer.thaw(info.pid);
  }

  async canHoldFrozen(containerId: string): Promise<boolean> {
    return (await this.runcRoot(containerId)) !== undefined;
  }

  async stopFrozen(containerId: string): Promise<void> {
    const root = await this.runcRoot(containerId);
    if (!root) throw new DockerError(`container ${containerId.slice(0, 12)} is not run by dockerd's runc`);
    await this.runcDump.stopFrozen(root, containerId);
  }

  /** The runc root of a container on cryo's direct runc path; undefined where Docker's checkpoint API is used. */
  private async runcRoot(containerId: string): Promise<string | undefined> {
    return this.options.dockerCheckpointApi ? undefined : this.runc.rootFor(this.execRoot, containerId);
  }

  private async checkpointThroughDocker(
    containerId: string,
    request: CheckpointRequest,
  ): Promise<RuntimeCheckpointResult> {
    if (criuConfigLines(request.criu).length > 0) {
      throw new DockerError(
        "CRIU options need cryo's direct runc path, and this container is not run by dockerd's runc",
      );
    }
    try {
      await this.client.checkpointApi(containerId).createCheckpoint({
        CheckpointID: request.checkpointId,
        CheckpointDir: request.parentDir,
        Exit: request.exit,
      });
    } catch (err) {
      throw await checkpointError(err, 'checkpoint');
    }
    // Docker's checkpoint API thaws the container itself: nothing stays frozen for the caller.
    return { stats: {}, path: 'docker', settled: Promise.resolve(), thaw: async () => undefined };
  }

  async ensureNotFrozen(containerId: string): Promise<void> {
    // Right after a checkpoint Docker can still report the container paused for a moment.
    for (let attempt = 0; attempt < 50; attempt++) {
      const info = await this.inspect(containerId);
      if (!info || !info.running) return;
      if (!info.paused && !(await this.freezer.isFrozen(info.pid))) return;
      await sleep(100);
    }
    const info = await this.inspect(containerId);
    if (info?.paused) await this.client.call((d) => d.getContainer(containerId).unpause());
    if (info?.running) await this.freezer.thaw(info.pid);
  }

  async createFromConfig(
    config: unknown,
    { name, labels, ports, imageId, keepVolumes }: CreateTarget,
  ): Promise<{ id: string; name: string }> {
    const options = { ...toCreateOptions(config, name, labels, ports, keepVolumes), Image: imageId };
    // A new container runs under cryo's runtime wherever dockerd has it, so that restores take its path.
    if ((await this.version()).cryoRuntime)
      options.HostConfig = { ...options.HostConfig, Runtime: CRYO_RUNTIME };
    const created = await this.client.callOr((d) => d.createContainer(options), [409], undefined);
    if (!created) throw new ContainerNameInUseError(name);
    return { id: created.id, name };
  }

  async restoresInPlace(containerId: string, criu: ContainerCriuOptions): Promise<boolean> {
    return (await this.restorePath(containerId, criu)) !== 'elsewhere';
  }

  async restore(
    containerId: string,
    imagesDir: string,
    criu: ContainerCriuOptions,
    lazy?: LazyRestore,
  ): Promise<void> {
    const restorePath = await this.restorePath(containerId, criu);
    if (restorePath === 'cryo-runtime') {
      const config = await restoreConfigLines(this.client, containerId, { ...criu, ...NO_FLAG_OPTIONS });
      const addresses = criu.tcpEstablished ? await dumpedAddresses(imagesDir) : [];
      return this.runtimeRestore.restore(containerId, imagesDir, criu, config, addresses, lazy);
    }
    if (lazy)
      throw new DockerError(
        "a lazy restore (post-copy) needs cryo's runtime, which this container does not run under",
      );
    if (restorePath === 'elsewhere') {
      const raw = await this.client.call(() => this.client.container(containerId).inspect());
      throw new DockerError(
        `container ${raw.Name.replace(/^\//, '')} cannot be restored in place: it does not run under cryo's runtime`,
      );
    }
    await this.restoreMutex.run(() =>
      this.leftovers.clearingTmpCopies(() =>
        withDockerCheckpoint(this.client, this.journal, containerId, imagesDir, (checkpointName) =>
          this.startFromCheckpoint(containerId, checkpointName),
        ),
      ),
    );
  }

  /**
   * How this container restores in place: through cryo's runtime when it runs under it; through
   * `docker start --checkpoint` when that works for it and the restore needs no CRIU configuration (runc would read
   * it from /etc/criu/runc.conf, which cryo never writes); otherwise only into a new container ('elsewhere'),
   * which needs cryo's runtime registered.
   */
  private async restorePath(
    containerId: string,
    criu: ContainerCriuOptions,
  ): Promise<'cryo-runtime' | 'docker-checkpoint' | 'elsewhere'> {
    const raw = await this.client.call(() => this.client.container(containerId).inspect());
    if (raw.HostConfig.Runtime === CRYO_RUNTIME) return 'cryo-runtime';
    const engine = await this.version();
    const network = raw.HostConfig.NetworkMode ?? '';
    const ownNetwork = network !== 'host' && !network.startsWith('container:');
    const lines = await restoreConfigLines(this.client, containerId, criu);
    const broken = ownNetwork && majorVersion(engine.version) >= FIRST_BROKEN_CHECKPOINT_START;
    if (!broken && lines.length === 0) return 'docker-checkpoint';
    if (engine.cryoRuntime) return 'elsewhere';
    const name = raw.Name.replace(/^\//, '');
    throw broken
      ? new RestorePathUnavailableError(
          name,
          `Docker ${engine.version} binds /proc/0/ns/net as the network namespace of a container restored through docker start --checkpoint (moby/moby#50750, containerd/containerd#12141)`,
        )
      : new RestorePathUnavailableError(
          name,
          `its restore needs CRIU options (${lines.join(', ')}), which runc would read from /etc/criu/runc.conf, a file of the whole host that cryo does not write`,
        );
  }

  async rename(containerId: string, name: string): Promise<void> {
    await this.client.call((d) => d.getContainer(containerId).rename({ name }));
  }

  resumeLazyRestores(): void {
    this.runtimeRestore.resumeHeldPolicies();
  }

  async remove(containerId: string): Promise<void> {
    await this.client.callOr(
      (d) => d.getContainer(containerId).remove({ force: true, v: false }),
      [404],
      undefined,
    );
  }

  async start(containerId: string): Promise<void> {
    await this.client.call((d) => d.getContainer(containerId).start());
  }

  async stop(containerId: string): Promise<void> {
    // 304: already stopped.
    await this.client.callOr((d) => d.getContainer(containerId).stop({ t: 5 }), [304], undefined);
  }

  async putFile(containerId: string, file: string, content: Buffer): Promise<void> {
    await this.client.call((d) =>
      d.getContainer(containerId).putArchive(singleFileTar(file, content), { path: '/' }),
    );
  }

  async runtimeSpec(containerId: string): Promise<unknown> {
    const bundle = path.join(
      this.execRoot,
      'containerd/daemon/io.containerd.runtime.v2.task/moby',
      containerId,
    );
    const text = await readFile(path.join(bundle, 'config.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  }

  async imageExists(ref: string): Promise<boolean> {
    return this.client.callOr(async (d) => (await d.getImage(ref).inspect(), true), [404], false);
  }

  async imageLayers(ref: string): Promise<string[] | undefined> {
    const image = await this.client.callOr((d) => d.getImage(ref).inspect(), [404], undefined);
    return image?.RootFS?.Layers;
  }

  async resolveImage(image: ImageIdentity): Promise<string | undefined> {
    if (await this.imageExists(image.id)) return image.id;
    const { layers } = image;
    if (!layers || layers.length === 0) return undefined;
    const same = (candidate: string[] | undefined) =>
      candidate?.length === layers.length && candidate.every((l, i) => l === layers[i]);
    const named = await this.client.callOr((d) => d.getImage(image.ref).inspect(), [404], undefined);
    if (named && same(named.RootFS?.Layers)) return named.Id;
    const all = await this.client.call((d) => d.listImages({ all: false }));
    for (const candidate of all) {
      if (same(await this.imageLayers(candidate.Id))) return candidate.Id;
    }
    return undefined;
  }

  async saveImage(ref: string): Promise<NodeJS.ReadableStream> {
    return this.client.call((d) => d.getImage(ref).get());
  }

  async loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    const progress = await this.client.call((d) => d.loadImage(tar));
    await new Promise<void>((resolve, reject) => {
      this.client.api.modem.followProgress(progress, (err: Error | null, output: { error?: string }[]) => {
        // dockerd answers 200 and reports a body it cannot load inside the progress stream.
        const refused = output.find((o) => o.error)?.error;
        if (err) reject(this.client.translate(err));
        else if (refused !== undefined) reject(new ImageInvalidError(loadRefusal(refused)));
        else resolve();
      });
    });
  }

  async volumeNames(): Promise<Set<string>> {
    const list = await this.client.call((d) => d.listVolumes());
    return new Set((list.Volumes ?? []).map((v: Docker.VolumeInspectInfo) => v.Name));
  }

  private async startFromCheckpoint(containerId: string, checkpointName: string): Promise<void> {
    const container = this.client.checkpointApi(containerId);
    for (let attempt = 0; ; attempt++) {
      try {
        await container.start({ _query: { checkpoint: checkpointName }, _body: {} });
        return;
      } catch (err) {
        const digest = CONTENT_EXISTS.exec(apiMessage(err))?.[1];
        if (digest && attempt === 0 && (await this.leftovers.removeContentBlob(digest))) continue;
        throw await checkpointError(err, 'restore');
      }
    }
  }
}

interface DockerInfo {
  Driver?: string;
  DriverStatus?: [string, string][];
  Runtimes?: Record<string, unknown>;
  DefaultRuntime?: string;
}

/** The options cryo's runtime passes as runc flags, so they stay out of the restore's CRIU configuration file. */
const NO_FLAG_OPTIONS = { tcpEstablished: false, fileLocks: false, externalUnixSockets: false };

/**
 * The addresses the container had at its dump, from the Docker inspect kept beside its images: established TCP
 * connections are restored bound to them.
 */
async function dumpedAddresses(imagesDir: string): Promise<string[]> {
  const text = await readFile(path.join(path.dirname(imagesDir), DOCKER_CONFIG), 'utf8').catch(
    () => undefined,
  );
  if (text === undefined) return [];
  const dumped = JSON.parse(text) as {
    NetworkSettings?: {
      Networks?: Record<
        string,
        { IPAddress?: string; IPPrefixLen?: number; GlobalIPv6Address?: string; GlobalIPv6PrefixLen?: number }
      >;
    };
  };
  // With the network's prefix, so that the connection's peer has a route as it had at the dump.
  return Object.values(dumped.NetworkSettings?.Networks ?? {}).flatMap((n) => [
    ...(n.IPAddress ? [`${n.IPAddress}/${n.IPPrefixLen || 32}`] : []),
    ...(n.GlobalIPv6Address ? [`${n.GlobalIPv6Address}/${n.GlobalIPv6PrefixLen || 128}`] : []),
  ]);
}

function majorVersion(version: string): number {
  return Number.parseInt(version, 10) || 0;
}

/** dockerd's reason without the path of its own scratch directory. */
function loadRefusal(message: string): string {
  return firstLine(message).replace(/open \S*\/docker-import-\d+\//, 'no entry ');
}
