import { DockerError } from '../../domain/errors/index.js';
import type {
  CheckpointRequest,
  ContainerCheckpointing,
  ContainerLifecycle,
  PageServerAddress,
  RuntimeCheckpointResult,
} from '../../services/ports/container-runtime.js';
import { hangUp } from '../criu/hang-up.js';
import type { CgroupFreezer } from './cgroup-freezer.js';
import { checkpointError } from './checkpoint-error.js';
import type { DockerClient } from './docker-client.js';
import { criuConfigLines, type RuncCheckpointer } from './runc-checkpointer.js';
import { sleep, type RuncDump } from './runc-dump.js';

/**
 * Dumps through runc directly where dockerd's runc runs the container (CRIU options, a freeze held for a
 * migration, post-copy), else through Docker's checkpoint API; and the freeze around them.
 */
export class DockerCheckpointing implements ContainerCheckpointing {
  constructor(
    private readonly client: DockerClient,
    private readonly containers: Pick<ContainerLifecycle, 'inspect'>,
    private readonly runc: RuncCheckpointer,
    private readonly runcDump: RuncDump,
    private readonly freezer: CgroupFreezer,
    private readonly execRoot: string,
    private readonly dockerCheckpointApi: boolean,
  ) {}

  async checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult> {
    const root = await this.runcRoot(containerId);
    if (root) return this.runcDump.dump(root, containerId, request);
    return this.checkpointThroughDocker(containerId, request);
  }

  async thawFrozen(containerId: string): Promise<void> {
    const info = await this.containers.inspect(containerId);
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

  hangUpPageServer(address: PageServerAddress): Promise<void> {
    return hangUp(address);
  }

  async ensureNotFrozen(containerId: string): Promise<void> {
    // Right after a checkpoint Docker can still report the container paused for a moment.
    for (let attempt = 0; attempt < 50; attempt++) {
      const info = await this.containers.inspect(containerId);
      if (!info || !info.running) return;
      if (!info.paused && !(await this.freezer.isFrozen(info.pid))) return;
      await sleep(100);
    }
    const info = await this.containers.inspect(containerId);
    if (info?.paused) await this.client.call((d) => d.getContainer(containerId).unpause());
    if (info?.running) await this.freezer.thaw(info.pid);
  }

  /** The runc root of a container on cryo's direct runc path; undefined where Docker's checkpoint API is used. */
  private async runcRoot(containerId: string): Promise<string | undefined> {
    return this.dockerCheckpointApi ? undefined : this.runc.rootFor(this.execRoot, containerId);
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
}
