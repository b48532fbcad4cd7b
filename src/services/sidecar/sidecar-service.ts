import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
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
  type AckFrame,
  type Frame,
  type Mode,
  type RegisterFrame,
  type StateFrame,
  type StateHandle,
  STATE_CHUNK_BYTES,
} from '../../domain/sidecar/protocol.js';
import type { Decoded } from '../../domain/sidecar/frame-codec.js';
import {
  CheckpointCoordinator,
  TriggerRefusedError,
  type CoordinatorClock,
  type CoordinatorOptions,
  type CoordinatorStore,
} from './checkpoint-coordinator.js';
import type { SidecarChannel, SidecarConnector } from './sidecar-connector.js';
import { replaceFile } from '../replace-file.js';

export interface SidecarServiceDeps {
  connector: SidecarConnector;
  /** Where each job's last checkpoint id is kept, so that ids increase across restarts of cryo and the job. */
  dataDir: string;
  clock: CoordinatorClock;
  coordinator?: Partial<CoordinatorOptions>;
  /** How long to wait for a job's socket and register, and for a restore to be loaded. */
  connectTimeoutMs?: number;
  restoreTimeoutMs?: number;
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
      cut.channel ?? (await this.deps.connector.connect(pid, { timeoutMs: 5_000 }).catch(() => undefined));
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
      );
      this.sessions.set(key, session);
    }
    return session;
  }
}

interface StateFile {
  path: string;
  handle: FileHandle;
  hash: Hash;
  size: number;
  sha256?: string;
}

/** The coordinator of one job, and the files of the checkpoint it is taking. */
class JobSession implements CoordinatorStore {
  private readonly coordinator: CheckpointCoordinator;
  private channel: SidecarChannel | undefined;
  private operatorsDir: string | undefined;
  private current: { id: number; dir: string; sharedDir: string; files: Map<string, StateFile> } | undefined;
  /** Where each shared state file of this job's completed checkpoints is, once published (hard links). */
  private readonly sharedFiles = new Map<string, Set<string>>();

  constructor(
    readonly job: string,
    private readonly counterFile: string,
    private readonly floor: number,
    create: (store: CoordinatorStore, send: (frame: Frame) => void) => CheckpointCoordinator,
  ) {
    this.coordinator = create(this, (frame) => this.send(frame));
  }

  async run(channel: SidecarChannel, operatorsDir: string, publishedOperatorsDir: string, mode: Mode) {
    this.channel = channel;
    this.operatorsDir = operatorsDir;
    channel.onFrame((d) => this.onFrame(d));
    const lost = channel.closed.then(() =>
      this.coordinator.abortPending(
        'CONNECTION_LOST',
        'the connection to the job closed during the checkpoint',
      ),
    );
    try {
      // A new session knows no shared state yet: the job sends all of it once.
      const outcome = await this.coordinator.trigger(mode, { incremental: await this.sharedStillKept() });
      if (outcome.status === 'complete') {
        const names = outcome.metadata.subtasks.flatMap((s) =>
          s.handles.filter((h) => h.shared).map((h) => h.name),
        );
        const referenced = new Set(names);
        for (const name of [...this.sharedFiles.keys()])
          if (!referenced.has(name)) this.sharedFiles.delete(name);
        for (const name of names) {
          const places = this.sharedFiles.get(name) ?? new Set<string>();
          places.add(path.join(publishedOperatorsDir, OPERATORS_SHARED_DIR, name));
          this.sharedFiles.set(name, places);
        }
      } else await this.removeFiles();
      return outcome;
    } finally {
      this.channel = undefined;
      await this.closeFiles();
      this.current = undefined;
      void lost;
    }
  }

  /** An aborted checkpoint leaves no state files: whatever was streamed for it goes. */
  private async removeFiles(): Promise<void> {
    await this.closeFiles();
    for (const f of this.current?.files.values() ?? []) await rm(f.path, { force: true });
  }

  // --- CoordinatorStore ---------------------------------------------------------------------------------------

  async lastCheckpointId(): Promise<number> {
    const text = await readFile(this.counterFile, 'utf8').catch(() => '0');
    const n = Number(text.trim());
    // A job restored elsewhere, or a cryo with another data directory: never below what the job has seen.
    return Math.max(Number.isSafeInteger(n) && n >= 0 ? n : 0, this.floor);
  }

  async reserveCheckpointId(id: number): Promise<void> {
    await mkdir(path.dirname(this.counterFile), { recursive: true, mode: 0o700 });
    await replaceFile(this.counterFile, `${id}\n`);
  }

  async writeMetadata(id: number, metadata: CheckpointMetadata): Promise<void> {
    const current = this.current;
    if (current?.id !== id) throw new Error(`checkpoint ${id} is not the one being taken`);
    await mkdir(current.dir, { recursive: true, mode: 0o700 });
    await replaceFile(path.join(current.dir, OPERATORS_METADATA), JSON.stringify(metadata));
  }

  async discard(id: number, handles: StateHandle[]): Promise<void> {
    const current = this.current;
    if (current?.id !== id) return;
    for (const h of handles) {
      const f = current.files.get(h.name);
      current.files.delete(h.name);
      await f?.handle.close().catch(() => undefined);
      await rm(path.join(h.shared ? current.sharedDir : current.dir, h.name), { force: true });
    }
  }

  // --- frames ------------------------------------------------------------------------------------------------

  private send(frame: Frame): void {
    if (frame.type === 'trigger' && this.operatorsDir) {
      this.current = {
        id: frame.checkpointId,
        dir: path.join(this.operatorsDir, operatorCheckpointDir(frame.checkpointId)),
        sharedDir: path.join(this.operatorsDir, OPERATORS_SHARED_DIR),
        files: new Map(),
      };
    }
    // `complete` waits until the whole checkpoint is published (SidecarService.finish).
    if (frame.type === 'complete') return;
    this.channel?.send(frame).catch(() => undefined);
  }

  private async onFrame({ frame, payload }: Decoded): Promise<void> {
    switch (frame.type) {
      case 'state':
        await this.writeState(frame, payload ?? Buffer.alloc(0));
        return;
      case 'ack': {
        const problem = await this.verify(frame);
        if (problem) {
          await this.coordinator.onDecline({ ...frame, type: 'decline', reason: problem });
        } else await this.coordinator.onAck(frame);
        return;
      }
      case 'decline':
        await this.coordinator.onDecline(frame);
        return;
      case 'error':
        await this.coordinator.abortPending('DECLINED', `the job answered ${frame.code}: ${frame.message}`);
        return;
      default:
        return;
    }
  }

  private async writeState(frame: StateFrame, payload: Buffer): Promise<void> {
    const current = this.current;
    if (current?.id !== frame.checkpointId) return;
    let f = current.files.get(frame.name);
    if (!f) {
      const dir = frame.shared ? current.sharedDir : current.dir;
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const file = path.join(dir, frame.name);
      f = {
        path: file,
        handle: await open(file, 'wx', 0o600),
        hash: createHash('sha256'),
        size: 0,
      };
      current.files.set(frame.name, f);
    }
    f.hash.update(payload);
    f.size += payload.length;
    await f.handle.write(payload);
  }

  /** The files an ack names must be the ones streamed, whole: their size and sha256. */
  private async verify(ack: AckFrame): Promise<string | undefined> {
    const current = this.current;
    if (current?.id !== ack.checkpointId) return undefined;
    for (const h of ack.handles) {
      let f = current.files.get(h.name);
      if (!f && h.size === 0) {
        await this.writeState(
          {
            v: PROTOCOL_VERSION,
            type: 'state',
            checkpointId: ack.checkpointId,
            operator: ack.operator,
            subtask: ack.subtask,
            name: h.name,
            size: 0,
            ...(h.shared ? { shared: true } : {}),
          },
          Buffer.alloc(0),
        );
        f = current.files.get(h.name);
      }
      if (!f && h.shared) {
        const problem = await this.linkShared(h);
        if (problem) return problem;
        continue;
      }
      if (!f) return `state ${h.name} was never sent`;
      f.sha256 ??= f.hash.digest('hex');
      if (f.size !== h.size || f.sha256 !== h.sha256)
        return `state ${h.name} does not match its size or sha256`;
      // Made durable with the whole checkpoint (fsync of every file, then the rename that publishes it), before
      // `complete` is sent.
    }
    return undefined;
  }

  /**
   * Whether every shared file of the last completed checkpoint is still kept by some checkpoint: otherwise (one
   * was deleted) the job is asked for a full snapshot, since it may reference any of them.
   */
  private async sharedStillKept(): Promise<boolean> {
    if (this.sharedFiles.size === 0) return false;
    for (const places of this.sharedFiles.values()) {
      for (const p of [...places]) if (!(await exists(p))) places.delete(p);
      if (places.size === 0) {
        this.sharedFiles.clear();
        return false;
      }
    }
    return true;
  }

  /** An unchanged block of an earlier checkpoint: this checkpoint gets its own hard link to the same file. */
  private async linkShared(h: StateHandle): Promise<string | undefined> {
    const current = this.current!;
    const target = path.join(current.sharedDir, h.name);
    if (await exists(target)) return undefined;
    await mkdir(current.sharedDir, { recursive: true, mode: 0o700 });
    for (const source of this.sharedFiles.get(h.name) ?? []) {
      const st = await stat(source).catch(() => undefined);
      if (!st || st.size !== h.size) continue;
      if (
        await link(source, target).then(
          () => true,
          () => false,
        )
      )
        return undefined;
    }
    return `shared state ${h.name} is no longer kept by any checkpoint`;
  }

  private async closeFiles(): Promise<void> {
    for (const f of this.current?.files.values() ?? []) await f.handle.close().catch(() => undefined);
  }
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

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
