import type { Checkpoint, ContainerCriuOptions, RestoreResult } from '../../domain/checkpoint.js';
import {
  ContainerNotFoundError,
  ContainerNotRunningError,
  ProcessNotFoundError,
  ProcessRefusedError,
} from '../../domain/errors/index.js';
import {
  CriuOptionsSchema,
  type CriuOptions,
  type Preflight,
  type ProcessReport,
} from '../../domain/process.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import { KeyedLocks } from '../support/keyed-locks.js';
import { measured, NO_METRICS } from '../ports/metrics.js';
import { checkpointProcess, type ProcessCheckpointBody } from './checkpoint-process.js';
import type { ProcessContext, ProcessServiceDeps } from './deps.js';
import { preflightTree } from './preflight-tree.js';
import { restoreProcess } from './restore-process.js';

export type { ProcessServiceDeps } from './deps.js';
export type { ProcessCheckpointBody } from './checkpoint-process.js';

/** Inspects process trees, says whether CRIU can dump them, and checkpoints and restores them with CRIU. */
export class ProcessService {
  private readonly ctx: ProcessContext;

  constructor(private readonly deps: ProcessServiceDeps) {
    this.ctx = { ...deps, locks: deps.locks ?? new KeyedLocks() };
  }

  async inspect(pid: number): Promise<ProcessReport> {
    await this.requireProcess(pid);
    return this.deps.inspector.report(pid);
  }

  async inspectContainer(ref: string): Promise<ProcessReport> {
    return this.deps.inspector.report((await this.runningContainer(ref)).pid);
  }

  async preflight(pid: number, options: CriuOptions): Promise<Preflight> {
    await this.requireProcess(pid);
    return preflightTree(this.deps, pid, options);
  }

  async preflightContainer(ref: string, options: Partial<ContainerCriuOptions> = {}): Promise<Preflight> {
    return this.preflightOf(await this.runningContainer(ref), options);
  }

  /** The pre-flight of a container the caller has already inspected. */
  preflightOf(
    container: Pick<ContainerInfo, 'pid' | 'tty'>,
    options: Partial<ContainerCriuOptions> = {},
  ): Promise<Preflight> {
    return preflightTree(
      this.deps,
      container.pid,
      CriuOptionsSchema.parse({
        tcpEstablished: options.tcpEstablished ?? false,
        fileLocks: options.fileLocks ?? false,
        externalUnixSockets: options.externalUnixSockets ?? false,
      }),
      { console: container.tty },
    );
  }

  async checkpoint(pid: number, body: ProcessCheckpointBody): Promise<Checkpoint> {
    await this.requireProcess(pid);
    return measured(this.deps.metrics ?? NO_METRICS, 'checkpoint', 'process', () =>
      checkpointProcess(this.ctx, pid, body),
    );
  }

  /** Restores a process checkpoint detached; CRIU needs the tree's own pids, so it waits for zombies to go. */
  restore(dir: string): Promise<RestoreResult> {
    return restoreProcess(this.ctx, dir);
  }

  private async requireProcess(pid: number): Promise<void> {
    if (pid === process.pid || pid === process.ppid)
      throw new ProcessRefusedError(pid, 'it is cryo itself or its parent');
    if (!(await this.deps.inspector.exists(pid))) throw new ProcessNotFoundError(pid);
  }

  private async runningContainer(ref: string): Promise<ContainerInfo> {
    const container = await this.deps.runtime.inspect(ref);
    if (!container) throw new ContainerNotFoundError(ref);
    if (!container.running) throw new ContainerNotRunningError(ref, container.state);
    return container;
  }
}
