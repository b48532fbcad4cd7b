import { createReadStream } from 'node:fs';
import { logged } from '../support/background.js';
import { NO_LOGGER, type Logger } from '../ports/logger.js';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ApplicationCheckpointFailedError,
  ApplicationRestoreFailedError,
  CheckpointTriggerRefusedError,
} from '../../domain/errors/index.js';
import {
  OPERATORS_DIR,
  OPERATORS_METADATA,
  OPERATORS_SHARED_DIR,
  operatorCheckpointDir,
  operatorCheckpointIdOf,
} from '../../domain/layout.js';
import { assignState, AssignmentError } from '../../domain/sidecar/assign.js';
import { CheckpointMetadataSchema, type CheckpointMetadata } from '../../domain/sidecar/metadata.js';
import {
  PROTOCOL_VERSION,
  type Frame,
  type Mode,
  type RegisterFrame,
  type StateHandle,
  STATE_CHUNK_BYTES,
} from '../../domain/sidecar/protocol.js';
import {
  CheckpointCoordinator,
  TriggerRefusedError,
  type CoordinatorClock,
  type CoordinatorOptions,
} from './checkpoint-coordinator.js';
import type { SidecarChannel, SidecarConnector } from '../ports/sidecar-connector.js';
import { JobSession } from './job-session.js';

export interface SidecarServiceDeps {
  connector: SidecarConnector;
  /** Where each job's last checkpoint id is kept, so that ids increase across restarts of cryo and the job. */
  dataDir: string;
  clock: CoordinatorClock;
  coordinator?: Partial<CoordinatorOptions>;
  /** How long to wait for a job's socket and register, and for a restore to be loaded. */
  connectTimeoutMs?: number;
  restoreTimeoutMs?: number;
  /** Where swallowed failures (a frame a job could not take) are logged. */
  log?: Logger;
}

export interface CutOptions {
  /** Where the cut is written (under operators/). */
  dir: string;
  /** Where `dir` will be once published: later checkpoints link the shared state they reference from there. */
  publishedDir: string;
  mode: Mode;
  /** Keep the connection open after the cut (no CRIU dump follows), for `finish` to use. */
  keepOpen: boolean;
}

/** A complete operator cut, written into a checkpoint directory; `complete` is sent once the checkpoint is published. */
export interface ApplicationCut {
  job: string;
  checkpointId: number;
  mode: Mode;
  subtasks: number;
  stateBytes: number;
  channel: SidecarChannel | undefined;
}

/**
 * Application-consistent checkpoints of the stream job inside a container: cryo triggers barriers through the
 * job's sidecar socket, stores every subtask's state and `_metadata` under operators/chk-<n>/ in the checkpoint,
 * and restores that state into a fresh job, redistributed over its key groups.
 */
export class SidecarService {
  private readonly sessions = new Map<string, JobSession>();

  constructor(private readonly deps: SidecarServiceDeps) {}

  /** Registers and closes: what the job inside the container reports. */
  async describe(pid: number): Promise<RegisterFrame> {
    const channel = await this.connect(pid, false);
    await channel.close();
    return channel.register;
  }

  /**
   * Takes one operator checkpoint into `dir`/operators/ (chk-<n>/ and shared/), and closes the connection before
   * any dump unless `keepOpen`.
   */
  async cut(pid: number, options: CutOptions): Promise<ApplicationCut> {
    const { dir, publishedDir, mode, keepOpen } = options;
    const channel = await this.connect(pid, false);
    const session = this.session(pid, channel.register);
    try {
      const outcome = await session.run(
        channel,
        path.join(dir, OPERATORS_DIR),
        path.join(publishedDir, OPERATORS_DIR),
        mode,
      );
      if (outcome.status !== 'complete') {
        throw new ApplicationCheckpointFailedError(outcome.reason, outcome.message);
      }
      const { metadata } = outcome;
      const cut: ApplicationCut = {
        job: metadata.job,
        checkpointId: metadata.checkpointId,
        mode,
        subtasks: metadata.subtasks.length,
        stateBytes: metadata.subtasks.reduce((n, s) => n + s.handles.reduce((m, h) => m + h.size, 0), 0),
        channel: keepOpen ? channel : undefined,
      };
      if (!keepOpen) await channel.close();
      return cut;
    } catch (err) {
      await channel.close();
      if (err instanceof TriggerRefusedError) throw new CheckpointTriggerRefusedError(err.code, err.message);
      throw err;
    }
  }

  /**
   * Tells the job that its cut is part of a published checkpoint (`complete`: two-phase-commit sinks make the
   * epoch's output visible), or that it is not (`abort`). The job may be gone: a later complete commits as well.
   */
  async finish(
    pid: number,
    cut: Pick<ApplicationCut, 'checkpointId' | 'channel'>,
    outcome: 'complete' | 'abort',
  ): Promise<void> {
    const frame: Frame =
      outcome === 'complete'
        ? { v: PROTOCOL_VERSION, type: 'complete', checkpointId: cut.checkpointId }
        : {
            v: PROTOCOL_VERSION,
            type: 'abort',
            checkpointId: cut.checkpointId,
            reason: 'the checkpoint failed',
          };
    const channel =
      cut.channel ??
      (await this.deps.connector
        .connect(pid, { timeoutMs: 5_000 })
        .catch(
          logged(this.deps.log ?? NO_LOGGER, `reaching job ${pid}'s sidecar to ${outcome} a checkpoint`),
        ));
    if (!channel) return;
    try {
      await channel.send(frame);
    } catch {
      // The job went away; it commits on its next complete, or is restored.
    } finally {
      await channel.close();
    }
  }

  /** Restores the job started in the container whose init is `pid` from the operator state in `dir`. */
  async restore(pid: number, dir: string): Promise<{ checkpointId: number; subtasks: number }> {
    const { metadata, chkDir } = await readLatestMetadata(dir);
    const channel = await this.connect(pid, true);
    try {
      const { register } = channel;
      let assignments;
      try {
        assignments = assignState(metadata, register.operators, register.maxParallelism);
      } catch (err) {
        if (err instanceof AssignmentError) throw new ApplicationRestoreFailedError(err.message);
        throw err;
      }
      const loaded = new Promise<void>((resolve, reject) => {
        channel.onFrame(async ({ frame }) => {
          if (frame.type === 'restored' && frame.checkpointId === metadata.checkpointId) resolve();
          else if (frame.type === 'error')
            reject(new ApplicationRestoreFailedError(`${frame.code}: ${frame.message}`));
        });
        void channel.closed.then((err) =>
          reject(
            new ApplicationRestoreFailedError(
              `the job closed the connection${err ? `: ${err.message}` : ''}`,
            ),
          ),
        );
      });
      loaded.catch(() => undefined);
      await channel.send({
        v: PROTOCOL_VERSION,
        type: 'restore',
        checkpointId: metadata.checkpointId,
        assignments,
      });
      const sent = new Set<string>();
      for (const a of assignments) {
        for (const h of a.handles) {
          if (sent.has(h.name)) continue;
          sent.add(h.name);
          const file = h.shared
            ? path.join(chkDir, '..', OPERATORS_SHARED_DIR, h.name)
            : path.join(chkDir, h.name);
          await sendStateFile(channel, file, metadata.checkpointId, a.operator, a.subtask, h);
        }
      }
      const timeoutMs = this.deps.restoreTimeoutMs ?? 60_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        loaded,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new ApplicationRestoreFailedError(`the job did not load its state within ${timeoutMs} ms`),
              ),
            timeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      return { checkpointId: metadata.checkpointId, subtasks: assignments.length };
    } finally {
      await channel.close();
    }
  }

  private connect(pid: number, waitForSocket: boolean): Promise<SidecarChannel> {
    return this.deps.connector.connect(pid, {
      timeoutMs: this.deps.connectTimeoutMs ?? 30_000,
      waitForSocket,
    });
  }

  /** One coordinator per running job process: a restarted job starts with a clean failure count, as in Flink. */
  private session(pid: number, register: RegisterFrame): JobSession {
    const topology = {
      job: register.job,
      maxParallelism: register.maxParallelism,
      subtasks: register.operators.flatMap((o) =>
        Array.from({ length: o.parallelism }, (_, subtask) => ({ operator: o.id, subtask })),
      ),
    };
    const key = `${register.job}@${pid}:${JSON.stringify(topology.subtasks)}`;
    let session = this.sessions.get(key);
    if (!session) {
      for (const [k, s] of this.sessions) if (s.job === register.job) this.sessions.delete(k);
      session = new JobSession(
        register.job,
        path.join(this.deps.dataDir, 'sidecar', `${register.job}.last-id`),
        register.lastCheckpointId,
        (store, send) =>
          new CheckpointCoordinator(topology, store, this.deps.clock, send, this.deps.coordinator),
        this.deps.log,
      );
      this.sessions.set(key, session);
    }
    return session;
  }
}

/** The operator checkpoint a cryo checkpoint holds (the highest chk-<n>, there is normally one). */
export async function readLatestMetadata(
  dir: string,
): Promise<{ metadata: CheckpointMetadata; chkDir: string }> {
  const base = path.join(dir, OPERATORS_DIR);
  const ids = (await readdir(base).catch(() => [] as string[]))
    .map(operatorCheckpointIdOf)
    .filter((n): n is number => n !== undefined)
    .sort((a, b) => b - a);
  for (const id of ids) {
    const chkDir = path.join(base, operatorCheckpointDir(id));
    const text = await readFile(path.join(chkDir, OPERATORS_METADATA), 'utf8').catch(() => undefined);
    if (text !== undefined) return { metadata: CheckpointMetadataSchema.parse(JSON.parse(text)), chkDir };
  }
  throw new ApplicationRestoreFailedError('the checkpoint holds no complete operator checkpoint');
}

async function sendStateFile(
  channel: SidecarChannel,
  file: string,
  checkpointId: number,
  operator: string,
  subtask: number,
  handle: StateHandle,
): Promise<void> {
  let sent = 0;
  for await (const chunk of createReadStream(file, {
    highWaterMark: STATE_CHUNK_BYTES,
  }) as AsyncIterable<Buffer>) {
    await channel.send(
      {
        v: PROTOCOL_VERSION,
        type: 'state',
        checkpointId,
        operator,
        subtask,
        name: handle.name,
        size: chunk.length,
      },
      chunk,
    );
    sent += chunk.length;
  }
  if (sent !== handle.size)
    throw new ApplicationRestoreFailedError(`state ${handle.name} is ${sent} bytes, not ${handle.size}`);
}
