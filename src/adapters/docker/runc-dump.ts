import path from 'node:path';
import { DEADLINES } from '../../defaults.js';
import type { CriuStats } from '../../domain/criu-stats.js';
import { DockerError } from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import { withIntent, type HostJournal } from '../../services/ports/host-journal.js';
import type { CheckpointRequest, RuntimeCheckpointResult } from '../../services/ports/container-runtime.js';
import type { CgroupFreezer } from './cgroup-freezer.js';
import type { DockerClient } from './docker-client.js';
import { runcCriuFlags, type RuncCheckpointer } from './runc-checkpointer.js';
import { servingLazyCheckpoint, type LazyCheckpoint } from './runc-lazy-checkpoint.js';

/**
 * A dump straight through the runc that dockerd runs the container with, into cryo's storage, with the
 * container's restart policy held while Docker handles the exit.
 */
export class RuncDump {
  constructor(
    private readonly client: DockerClient,
    private readonly runc: RuncCheckpointer,
    private readonly journal: HostJournal,
    private readonly isRunning: (containerId: string) => Promise<boolean>,
    private readonly freezer: CgroupFreezer,
    /** How long a lazy dump may take to start serving its pages while the workload is frozen. */
    private readonly lazyReadyMs: number = DEADLINES.lazyDump.ms,
  ) {}

  async dump(
    root: string,
    containerId: string,
    request: CheckpointRequest,
  ): Promise<RuntimeCheckpointResult> {
    const imagesDir = path.join(request.parentDir, request.checkpointId);
    const container = this.client.container(containerId);
    const hold = !request.exit && request.holdFrozen === true;
    const info = request.exit || hold ? await this.client.call(() => container.inspect()) : undefined;
    const putBack = request.exit ? await this.holdRestartPolicy(containerId, info!) : async () => undefined;
    // CRIU leaves a cgroup frozen before the dump frozen after it (runc checkpoint --leave-running included),
    // so that the caller can read the root filesystem while the workload cannot change it.
    const frozen = hold ? await this.freeze(containerId, info!.State.Pid, request.heldBy) : undefined;
    const thaw = async () => {
      if (!frozen) return;
      await this.freezer.thaw(frozen.pid);
      this.journal.end(frozen.entry);
    };
    if (request.lazyPages) {
      if (!frozen || request.heldBy === undefined)
        throw new DockerError('a lazy dump needs the container held frozen for its migration');
      let lazy: LazyCheckpoint;
      try {
        lazy = await servingLazyCheckpoint(
          {
            binary: this.runc.binary,
            root,
            containerId,
            imagesDir,
            workDir: request.parentDir,
            criuFlags: runcCriuFlags(request.criu),
          },
          request.lazyPages,
          this.lazyReadyMs,
        );
      } catch (err) {
        await thaw();
        throw err;
      }
      return {
        stats: {},
        path: 'runc',
        settled: Promise.resolve(),
        thaw,
        pages: { served: lazy.served, abort: lazy.abort },
      };
    }
    let stats: CriuStats;
    try {
      stats = await withIntent(this.journal, { kind: HostIntentKind.FROZEN, containerId }, () =>
        this.runc.checkpoint({
          root,
          containerId,
          imagesDir,
          workDir: request.parentDir,
          leaveRunning: !request.exit,
          criu: request.criu,
        }),
      );
    } catch (err) {
      await thaw();
      await putBack();
      throw err;
    }
    // dockerd takes a few hundred ms to handle the exit (task delete, network teardown); the caller stores
    // the images meanwhile and waits for this before it reports the checkpoint.
    const settled = (async () => {
      try {
        if (request.exit) await this.waitStopped(containerId);
      } finally {
        await putBack();
      }
    })();
    settled.catch(() => undefined);
    return { stats, path: 'runc', settled, thaw };
  }

  /**
   * Stops a container that a dump left frozen: SIGKILL to its init while frozen, then a thaw, so that no process
   * of it runs another instruction; its restart policy is set aside until Docker has seen the exit.
   */
  async stopFrozen(root: string, containerId: string): Promise<void> {
    const info = await this.client.call(() => this.client.container(containerId).inspect());
    if (!info.State.Running) return;
    const putBack = await this.holdRestartPolicy(containerId, info);
    try {
      await this.runc.kill(root, containerId, 'KILL');
      await this.freezer.thaw(info.State.Pid);
      await this.waitStopped(containerId);
    } finally {
      await putBack();
    }
  }

  /**
   * dockerd 20.10 restarts a container that a checkpoint stopped, from scratch, when its restart policy says so
   * (seen with `docker checkpoint create` here); the policy is set aside until Docker has seen the exit.
   */
  private async holdRestartPolicy(
    containerId: string,
    info: { HostConfig: { RestartPolicy?: { Name?: string; MaximumRetryCount?: number } } },
  ): Promise<() => Promise<void>> {
    const policy = info.HostConfig.RestartPolicy;
    if (policy?.Name === undefined || policy.Name === '' || policy.Name === 'no')
      return async () => undefined;
    const container = this.client.container(containerId);
    const held = this.journal.begin({
      kind: HostIntentKind.RESTART_POLICY,
      containerId,
      policy: { Name: policy.Name, MaximumRetryCount: policy.MaximumRetryCount },
    });
    await this.client.call(() => container.update({ RestartPolicy: { Name: 'no' } }));
    return async () => {
      await this.client.call(() => container.update({ RestartPolicy: policy }));
      this.journal.end(held);
    };
  }

  private async freeze(
    containerId: string,
    pid: number,
    heldBy: string | undefined,
  ): Promise<{ pid: number; entry: number }> {
    const entry = this.journal.begin({
      kind: HostIntentKind.FROZEN,
      containerId,
      ...(heldBy !== undefined ? { heldBy } : {}),
    });
    try {
      await this.freezer.freeze(pid);
    } catch (err) {
      this.journal.end(entry);
      throw err;
    }
    return { pid, entry };
  }

  /** Waits until dockerd has seen the container's processes end (its exit event arrives asynchronously). */
  private async waitStopped(containerId: string): Promise<void> {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (!(await this.isRunning(containerId))) return;
      await sleep(25);
    }
    throw new DockerError(`dockerd still reports container ${containerId} running 5 s after its checkpoint`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
