import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import { DockerError, RestorePathUnavailableError } from '../../domain/errors/index.js';
import { DOCKER_CONFIG } from '../../domain/layout.js';
import type { ContainerRestore, EngineInfo, LazyRestore } from '../../services/ports/container-runtime.js';
import type { HostJournal } from '../../services/ports/host-journal.js';
import { withDockerCheckpoint } from './checkpoint-dir.js';
import { checkpointError } from './checkpoint-error.js';
import type { ContainerdLeftovers } from './containerd-leftovers.js';
import { CRYO_RUNTIME, type CryoRuntimeRestore } from './cryo-runtime-restore.js';
import { apiMessage, type DockerClient } from './docker-client.js';
import { FIRST_BROKEN_CHECKPOINT_START, majorVersion } from './docker-engine-info.js';
import { Mutex } from './mutex.js';
import { restoreConfigLines } from './restore-options.js';

const CONTENT_EXISTS = /content (sha256:[0-9a-f]{64}): already exists/;

/** The options cryo's runtime passes as runc flags, so they stay out of the restore's CRIU configuration file. */
const NO_FLAG_OPTIONS = { tcpEstablished: false, fileLocks: false, externalUnixSockets: false };

/**
 * Restores through cryo's OCI runtime (native-scripts/cryo-runtime), or `docker start --checkpoint` for a runc
 * container where that still works.
 */
export class DockerRestore implements ContainerRestore {
  // Restores run one at a time so that each can tell its own containerd leftovers in /tmp from another's.
  private readonly restoreMutex = new Mutex();

  constructor(
    private readonly client: DockerClient,
    private readonly journal: HostJournal,
    private readonly engine: EngineInfo,
    private readonly runtimeRestore: CryoRuntimeRestore,
    private readonly leftovers: ContainerdLeftovers,
  ) {}

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

  resumeLazyRestores(): void {
    this.runtimeRestore.resumeHeldPolicies();
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
    const engine = await this.engine.version();
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
