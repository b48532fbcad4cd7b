import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Checkpoint, ContainerCriuOptions, RestoreResult } from '../domain/checkpoint.js';
import {
  CheckpointNameInUseError,
  ContainerNotFoundError,
  ContainerNotRunningError,
  CriuUnavailableError,
  ErrorCode,
  PreflightFailedError,
  ProcessNotFoundError,
  ProcessRefusedError,
  ProcessRunningError,
} from '../domain/errors/index.js';
import { compareVersions } from '../domain/host-fit.js';
import { CHECKPOINT_IMAGES_DIR, PROCESS_RECORD, RESTORED_PIDFILE } from '../domain/layout.js';
import { preflightProblems } from '../domain/preflight.js';
import {
  CriuOptionsSchema,
  type CriuOptions,
  type Preflight,
  type Problem,
  type ProcessReport,
} from '../domain/process.js';
import type { CheckpointCatalog } from './checkpoint-catalog.js';
import type { CheckpointEngine } from './checkpoint-engine.js';
import { newId } from './ids.js';
import type { Clock } from './clock.js';
import type { ContainerInfo, ContainerRuntime } from './container-runtime.js';
import type { ImageStore } from './image-store.js';
import { KeyedLocks } from './keyed-locks.js';
import type { ProcessInspector } from './process-inspector.js';
import { publishCheckpoint } from './publish-checkpoint.js';

/** What a process checkpoint keeps beside its images, to restore it the same way. */
const MIN_CRIU = '4.2';
const ZOMBIE_WAIT_MS = 10_000;

// Docker's checkpoint API passes no CRIU options, so a container is dumped with the defaults.

const ProcessRecordSchema = z.object({
  pid: z.number(),
  pids: z.array(z.number()).default([]),
  options: CriuOptionsSchema,
});

export interface ProcessServiceDeps {
  inspector: ProcessInspector;
  engine: CheckpointEngine;
  runtime: ContainerRuntime;
  catalog: CheckpointCatalog;
  store: ImageStore;
  clock: Clock;
  locks?: KeyedLocks;
}

export interface ProcessCheckpointBody extends CriuOptions {
  name?: string | undefined;
  leaveRunning: boolean;
  force: boolean;
}

/** Inspects process trees, says whether CRIU can dump them, and checkpoints and restores them with CRIU. */
export class ProcessService {
  private readonly locks: KeyedLocks;

  constructor(private readonly deps: ProcessServiceDeps) {
    this.locks = deps.locks ?? new KeyedLocks();
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
    return this.check(pid, options);
  }

  async preflightContainer(ref: string, options: Partial<ContainerCriuOptions> = {}): Promise<Preflight> {
    return this.preflightOf(await this.runningContainer(ref), options);
  }

  /** The pre-flight of a container the caller has already inspected. */
  preflightOf(
    container: Pick<ContainerInfo, 'pid' | 'tty'>,
    options: Partial<ContainerCriuOptions> = {},
  ): Promise<Preflight> {
    return this.check(
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
    const { engine, catalog, store, clock, inspector } = this.deps;
    await this.requireProcess(pid);
    const started = clock.now();
    const release = this.locks.acquire(`pid:${pid}`, 'checkpoint', `pid ${pid}`);
    const id = newId(started);
    try {
      const report = await inspector.report(pid);
      const root = report.processes[0]!;
      const name = body.name ?? `checkpoint-${id}`;
      if (catalog.findByName(`pid:${pid}`, name)) throw new CheckpointNameInUseError(root.comm, name);
      const options: CriuOptions = {
        tcpEstablished: body.tcpEstablished,
        fileLocks: body.fileLocks,
        shellJob: body.shellJob,
        externalUnixSockets: body.externalUnixSockets,
      };
      if (!body.force) {
        const { problems } = await this.check(pid, options, { known: report });
        if (problems.length > 0) throw new PreflightFailedError(problems);
      }
      return await publishCheckpoint(
        store,
        catalog,
        id,
        async (dir) => {
          const images = path.join(dir, CHECKPOINT_IMAGES_DIR);
          await mkdir(images);
          const dumpStarted = clock.now();
          const { stats, pids } = await engine.dump(pid, images, {
            ...options,
            leaveRunning: body.leaveRunning,
          });
          const dumpMs = clock.now() - dumpStarted;
          // The tree as CRIU dumped it: children started since the report hold pids, and PID 1 reaps them late.
          const record = {
            pid,
            pids: [...new Set([...report.processes.map((p) => p.pid), ...pids])],
            options,
          };
          await writeFile(path.join(dir, PROCESS_RECORD), JSON.stringify(record), { mode: 0o600 });
          return { dumpMs, stats };
        },
        ({ dumpMs, stats }, sizeBytes) => ({
          id,
          name,
          kind: 'process',
          process: { pid, comm: root.comm, cmdline: root.cmdline },
          createdAt: new Date(started).toISOString(),
          leaveRunning: body.leaveRunning,
          sizeBytes,
          stats: { dumpMs, totalMs: clock.now() - started, ...stats },
          status: 'complete',
        }),
      );
    } finally {
      release();
    }
  }

  /** Restores a process checkpoint detached; CRIU needs the tree's own pids, so it waits for zombies to go. */
  async restore(dir: string): Promise<RestoreResult> {
    const started = this.deps.clock.now();
    const record = ProcessRecordSchema.parse(
      JSON.parse(await readFile(path.join(dir, PROCESS_RECORD), 'utf8')),
    );
    const release = this.locks.acquire(`pid:${record.pid}`, 'restore', `pid ${record.pid}`);
    try {
      for (const p of new Set([record.pid, ...record.pids])) await this.waitGone(p);
      const images = path.join(dir, CHECKPOINT_IMAGES_DIR);
      await rm(path.join(images, RESTORED_PIDFILE), { force: true });
      const { pid, stats } = await this.deps.engine.restore(images, record.options);
      return { pid, restoreMs: this.deps.clock.now() - started, stats };
    } finally {
      release();
    }
  }

  /**
   * `known`: the report, when the caller has read it already; `console`: the tree is a container on a console
   * of its own, the terminal on its root's stdio.
   */
  private async check(
    pid: number,
    options: CriuOptions,
    { known, console = false }: { known?: ProcessReport; console?: boolean } = {},
  ): Promise<Preflight> {
    const report = known ?? (await this.deps.inspector.report(pid));
    const root = report.processes.find((p) => p.pid === report.root);
    const consoles = new Set(
      console
        ? (root?.fds ?? []).filter((f) => f.fd <= 2 && f.kind === 'tty' && f.device).map((f) => f.device!)
        : [],
    );
    const problems: Problem[] = preflightProblems(report, options, {
      consoles,
      dumper: await this.deps.inspector.dumper(),
    });
    try {
      const version = await this.deps.engine.version();
      if (compareVersions(version, MIN_CRIU) < 0) {
        problems.push({
          code: 'CRIU_TOO_OLD',
          message: `CRIU ${version} is older than ${MIN_CRIU}`,
          hint: 'install CRIU >= 4.2 (native-scripts/install-criu.sh)',
        });
      }
    } catch (err) {
      if (!(err instanceof CriuUnavailableError)) throw err;
      problems.push({ code: ErrorCode.CRIU_UNAVAILABLE, message: err.message, hint: err.hint ?? '' });
    }
    return { checkpointable: problems.length === 0, problems };
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

  private async waitGone(pid: number): Promise<void> {
    const deadline = this.deps.clock.now() + ZOMBIE_WAIT_MS;
    for (;;) {
      const liveness = await this.deps.inspector.liveness(pid);
      if (liveness === 'gone') return;
      if (liveness === 'running') throw new ProcessRunningError(pid);
      // PID 1 reaps late here; CRIU cannot restore over a pid that is still a zombie.
      if (this.deps.clock.now() > deadline) throw new ProcessRunningError(pid);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
