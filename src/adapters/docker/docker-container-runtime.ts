import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import {
  AppError,
  ContainerNameInUseError,
  ContainerNotFoundError,
  CriuError,
  DockerError,
  DockerUnavailableError,
  ImageInvalidError,
} from '../../domain/errors/index.js';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import type { CriuStats } from '../../domain/criu-stats.js';
import type {
  CheckpointRequest,
  ContainerInfo,
  ContainerRuntime,
  RuntimeCheckpointResult,
  RuntimeVersion,
} from '../../services/container-runtime.js';
import { tailLines } from '../criu/log-tail.js';
import { Mutex } from './mutex.js';
import { SharedLock } from './shared-lock.js';
import { singleFileTar } from './single-file-tar.js';
import { toCreateOptions } from './create-options.js';
import { criuConfigLines, RuncCheckpointer } from './runc-checkpointer.js';

export interface DockerContainerRuntimeOptions {
  /** Path of dockerd's API socket (default: /var/run/docker.sock). */
  socketPath?: string;
  /** containerd's socket for this dockerd; found under dockerd's exec root when not given. */
  containerdSocket?: string;
  /** Where containerd unpacks a checkpoint for a restore. */
  containerdTmpDir?: string;
  /** dockerd's --exec-root (default /var/run/docker), where the runtime bundles live. */
  execRoot?: string;
  /** The runc binary for direct dumps (default: runc on PATH). */
  runc?: string;
  /** The CRIU configuration file runc reads on every restore (default /etc/criu/runc.conf). */
  runcCriuConfig?: string;
  /** Dump through Docker's checkpoint API even where runc could be driven directly. */
  dockerCheckpointApi?: boolean;
}

interface DockerApiError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string } | null;
}

/** Checkpoint methods that dockerode has but @types/dockerode does not declare. */
interface CheckpointingContainer {
  createCheckpoint(opts: { CheckpointID: string; CheckpointDir: string; Exit: boolean }): Promise<unknown>;
  start(opts: { _query: { checkpoint: string }; _body: Record<string, never> }): Promise<unknown>;
  listCheckpoint(): Promise<{ Name: string }[] | null>;
  deleteCheckpoint(name: string): Promise<unknown>;
}

const CONTENT_EXISTS = /content (sha256:[0-9a-f]{64}): already exists/;
const CRIU_LOG_PATH = /(\/[^\s:"]+\.log)/;

export class DockerContainerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private rootDir: string | undefined;
  // Restores run one at a time so that each can tell its own containerd leftovers in /tmp from another's.
  private readonly restoreMutex = new Mutex();
  /** Held shared by every dump (runc's or Docker's), exclusively while a restore has written CRIU options into runc's file. */
  private readonly runcConfig = new SharedLock();
  private readonly runc: RuncCheckpointer;

  constructor(private readonly options: DockerContainerRuntimeOptions = {}) {
    this.docker = new Docker({ socketPath: options.socketPath ?? '/var/run/docker.sock' });
    this.runc = new RuncCheckpointer(options.runc);
  }

  async version(): Promise<RuntimeVersion> {
    const v = await this.call(() => this.docker.version());
    return { version: v.Version, experimental: Boolean((v as { Experimental?: boolean }).Experimental) };
  }

  async inspect(ref: string): Promise<ContainerInfo | undefined> {
    let raw: Docker.ContainerInspectInfo;
    try {
      raw = await this.docker.getContainer(ref).inspect();
    } catch (err) {
      if ((err as DockerApiError).statusCode === 404) return undefined;
      throw this.translate(err);
    }
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

  async checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult> {
    const root = this.options.dockerCheckpointApi
      ? undefined
      : await this.runc.rootFor(this.execRoot(), containerId);
    if (!root) return this.checkpointThroughDocker(containerId, request);
    const imagesDir = path.join(request.parentDir, request.checkpointId);
    const container = this.docker.getContainer(containerId);
    const policy = request.exit
      ? (await this.call(() => container.inspect())).HostConfig.RestartPolicy
      : undefined;
    // dockerd 20.10 restarts a container that a checkpoint stopped, from scratch, when its restart policy says so
    // (seen with `docker checkpoint create` here); the policy is set aside until Docker has seen the exit.
    const holdPolicy = policy?.Name !== undefined && policy.Name !== '' && policy.Name !== 'no';
    if (holdPolicy) await this.call(() => container.update({ RestartPolicy: { Name: 'no' } }));
    const putBack = async () => {
      if (holdPolicy) await this.call(() => container.update({ RestartPolicy: policy }));
    };
    let stats: CriuStats;
    try {
      stats = await this.runcConfig.shared(() =>
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
    return { stats, path: 'runc', settled };
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
    const container = this.checkpointApi(containerId);
    try {
      await this.runcConfig.shared(() =>
        container.createCheckpoint({
          CheckpointID: request.checkpointId,
          CheckpointDir: request.parentDir,
          Exit: request.exit,
        }),
      );
    } catch (err) {
      throw await this.checkpointError(err, 'checkpoint');
    }
    return { stats: {}, path: 'docker', settled: Promise.resolve() };
  }

  /** Waits until dockerd has seen the container's processes end (its exit event arrives asynchronously). */
  private async waitStopped(containerId: string): Promise<void> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const info = await this.inspect(containerId);
      if (!info?.running) return;
      await sleep(25);
    }
    throw new DockerError(`dockerd still reports container ${containerId} running 5 s after its checkpoint`);
  }

  async ensureNotFrozen(containerId: string): Promise<void> {
    // Right after a checkpoint Docker can still report the container paused for a moment.
    for (let attempt = 0; attempt < 50; attempt++) {
      const info = await this.inspect(containerId);
      if (!info || !info.running) return;
      if (!info.paused && !(await this.cgroupFrozen(info.pid))) return;
      await sleep(100);
    }
    const info = await this.inspect(containerId);
    if (info?.paused) await this.call(() => this.docker.getContainer(containerId).unpause());
    if (info?.running) await this.thaw(info.pid);
  }

  async createFromConfig(
    config: unknown,
    name: string,
    labels: Record<string, string>,
    ports: 'same' | 'free' = 'free',
  ): Promise<{ id: string; name: string }> {
    try {
      const created = await this.docker.createContainer(toCreateOptions(config, name, labels, ports));
      return { id: created.id, name };
    } catch (err) {
      if ((err as DockerApiError).statusCode === 409) throw new ContainerNameInUseError(name);
      throw this.translate(err);
    }
  }

  async restore(containerId: string, imagesDir: string, criu: ContainerCriuOptions): Promise<void> {
    const root = await this.dockerRootDir();
    const checkpointName = `cryo-${randomBytes(6).toString('hex')}`;
    const checkpointsDir = path.join(root, 'containers', containerId, 'checkpoints');
    const target = path.join(checkpointsDir, checkpointName);
    await this.restoreMutex.run(async () => {
      const tmpBefore = await this.containerdLeftovers();
      try {
        // `docker start --checkpoint-dir` is refused ("custom checkpointdir is not supported", moby/moby#37344),
        // so the images go into the container's own checkpoints directory, as links into cryo's storage.
        await linkImages(imagesDir, target);
        await this.requireListed(containerId, checkpointName);
        const lines = [
          ...criuConfigLines({ ...criu, ghostLimitBytes: undefined }),
          ...((await this.bindsFiles(containerId)) ? ['mntns-compat-mode'] : []),
        ];
        await this.withRestoreOptions(lines, () => this.startFromCheckpoint(containerId, checkpointName));
      } finally {
        await this.checkpointApi(containerId)
          .deleteCheckpoint(checkpointName)
          .catch(() => undefined);
        await rm(target, { recursive: true, force: true });
        // containerd 1.6 leaves an unpacked copy of every restored checkpoint in /tmp (containerd/containerd#8009).
        const tmpAfter = await this.containerdLeftovers();
        const dir = this.options.containerdTmpDir ?? '/tmp';
        await Promise.all(
          [...tmpAfter]
            .filter((d) => !tmpBefore.has(d))
            .map((d) => rm(path.join(dir, d), { recursive: true, force: true })),
        );
      }
    });
  }

  async remove(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true, v: false });
    } catch (err) {
      if ((err as DockerApiError).statusCode === 404) return;
      throw this.translate(err);
    }
  }

  async start(containerId: string): Promise<void> {
    await this.call(() => this.docker.getContainer(containerId).start());
  }

  async stop(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).stop({ t: 5 });
    } catch (err) {
      // 304: already stopped.
      if ((err as DockerApiError).statusCode === 304) return;
      throw this.translate(err);
    }
  }

  async putFile(containerId: string, file: string, content: Buffer): Promise<void> {
    await this.call(() =>
      this.docker.getContainer(containerId).putArchive(singleFileTar(file, content), { path: '/' }),
    );
  }

  async runtimeSpec(containerId: string): Promise<unknown> {
    const bundle = path.join(
      this.execRoot(),
      'containerd/daemon/io.containerd.runtime.v2.task/moby',
      containerId,
    );
    const text = await readFile(path.join(bundle, 'config.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (err) {
      if ((err as DockerApiError).statusCode === 404) return false;
      throw this.translate(err);
    }
  }

  async saveImage(ref: string): Promise<NodeJS.ReadableStream> {
    return this.call(() => this.docker.getImage(ref).get());
  }

  async loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    const progress = await this.call(() => this.docker.loadImage(tar));
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(progress, (err: Error | null, output: { error?: string }[]) => {
        // dockerd answers 200 and reports a body it cannot load inside the progress stream.
        const refused = output.find((o) => o.error)?.error;
        if (err) reject(this.translate(err));
        else if (refused !== undefined) reject(new ImageInvalidError(loadRefusal(refused)));
        else resolve();
      });
    });
  }

  async volumeNames(): Promise<Set<string>> {
    const list = await this.call(() => this.docker.listVolumes());
    return new Set((list.Volumes ?? []).map((v) => v.Name));
  }

  /**
   * Whether the container has a single file bind-mounted from the host (`-v ./app.conf:/etc/app.conf`, or
   * docker-init with `--init`): CRIU 4.2's mount engine (mount-v2) cannot restore those here ("Can't remount ...
   * with MS_PRIVATE: No such file or directory"), its compat engine can.
   */
  private async bindsFiles(containerId: string): Promise<boolean> {
    const raw = await this.call(() => this.docker.getContainer(containerId).inspect());
    if (raw.HostConfig.Init === true) return true;
    for (const m of raw.Mounts ?? []) {
      if (m.Type !== 'bind' || !m.Source) continue;
      if ((await stat(m.Source).catch(() => undefined))?.isFile()) return true;
    }
    return false;
  }

  /**
   * runc reads one CRIU configuration file on every restore, and dockerd offers no per-container annotation
   * to name another (org.criu.config needs API 1.43); restores are serialised, so the options are written
   * there for the length of this one restore and the file is put back as it was. runc reads it on dumps too,
   * and some options are refused there, so no dump starts meanwhile.
   */
  private async withRestoreOptions(lines: string[], fn: () => Promise<void>): Promise<void> {
    if (lines.length === 0) return fn();
    return this.runcConfig.exclusive(() => this.writingRestoreOptions(lines, fn));
  }

  private async writingRestoreOptions(lines: string[], fn: () => Promise<void>): Promise<void> {
    const file = this.options.runcCriuConfig ?? '/etc/criu/runc.conf';
    const before = await readFile(file, 'utf8').catch(() => undefined);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(
      file,
      `${before ?? ''}${before && !before.endsWith('\n') ? '\n' : ''}${lines.join('\n')}\n`,
    );
    try {
      await fn();
    } finally {
      if (before === undefined) await rm(file, { force: true });
      else await writeFile(file, before);
    }
  }

  private execRoot(): string {
    return this.options.execRoot ?? '/var/run/docker';
  }

  private checkpointApi(containerId: string): CheckpointingContainer {
    return this.docker.getContainer(containerId) as unknown as CheckpointingContainer;
  }

  private async requireListed(containerId: string, checkpointName: string): Promise<void> {
    const listed = await this.call(() => this.checkpointApi(containerId).listCheckpoint());
    if (!(listed ?? []).some((c) => c.Name === checkpointName)) {
      throw new DockerError(
        `dockerd does not list checkpoint ${checkpointName} placed for container ${containerId}`,
      );
    }
  }

  private async startFromCheckpoint(containerId: string, checkpointName: string): Promise<void> {
    const container = this.checkpointApi(containerId);
    for (let attempt = 0; ; attempt++) {
      try {
        await container.start({ _query: { checkpoint: checkpointName }, _body: {} });
        return;
      } catch (err) {
        const digest = CONTENT_EXISTS.exec(apiMessage(err))?.[1];
        // containerd (namespace moby) may still hold the same checkpoint blob from an earlier restore or
        // checkpoint, and then refuses to commit it again; dropping the stale blob lets the start go through.
        if (digest && attempt === 0 && (await this.removeContentBlob(digest))) continue;
        throw await this.checkpointError(err, 'restore');
      }
    }
  }

  private async removeContentBlob(digest: string): Promise<boolean> {
    const socket = await this.containerdSocket();
    if (!socket) return false;
    const result = await execa('ctr', ['--address', socket, '--namespace', 'moby', 'content', 'rm', digest], {
      reject: false,
    });
    return result.exitCode === 0;
  }

  private async containerdSocket(): Promise<string | undefined> {
    if (this.options.containerdSocket) return this.options.containerdSocket;
    // dockerd runs its own containerd under its exec root, unless a system containerd was there first.
    for (const candidate of [
      path.join(this.execRoot(), 'containerd/containerd.sock'),
      '/run/containerd/containerd.sock',
    ]) {
      if (await exists(candidate)) return candidate;
    }
    return undefined;
  }

  private async containerdLeftovers(): Promise<Set<string>> {
    const entries = await readdir(this.options.containerdTmpDir ?? '/tmp').catch(() => [] as string[]);
    return new Set(entries.filter((e) => e.startsWith('ctrd-checkpoint')));
  }

  private async dockerRootDir(): Promise<string> {
    if (!this.rootDir) {
      const info = (await this.call(() => this.docker.info())) as { DockerRootDir: string };
      this.rootDir = info.DockerRootDir;
    }
    return this.rootDir;
  }

  /** A CriuError with CRIU's log tail when the daemon names a CRIU log, otherwise a Docker error. */
  private async checkpointError(err: unknown, action: 'checkpoint' | 'restore'): Promise<AppError> {
    const translated = this.translate(err);
    if (!(translated instanceof DockerError)) return translated;
    const message = apiMessage(err);
    if (!/criu|runc|checkpoint/i.test(message)) return translated;
    const logPath = CRIU_LOG_PATH.exec(message)?.[1];
    const log = logPath ? await readFile(logPath, 'utf8').catch(() => '') : '';
    return new CriuError(`CRIU ${action} failed: ${firstLine(message)}`, tailLines(log, 25), logPath, {
      cause: err,
    });
  }

  private async cgroupFrozen(pid: number): Promise<boolean> {
    const file = await this.freezerFile(pid);
    if (!file) return false;
    const state = (await readFile(file.path, 'utf8').catch(() => '')).trim();
    return file.v2 ? state === '1' : state === 'FROZEN' || state === 'FREEZING';
  }

  private async thaw(pid: number): Promise<void> {
    const file = await this.freezerFile(pid);
    if (file) await writeFile(file.path, file.v2 ? '0' : 'THAWED').catch(() => undefined);
  }

  private async freezerFile(pid: number): Promise<{ path: string; v2: boolean } | undefined> {
    if (pid <= 0) return undefined;
    const cgroups = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
    for (const line of cgroups.split('\n')) {
      const [, controllers, cgPath] = line.split(':');
      if (controllers === undefined || cgPath === undefined) continue;
      if (controllers.split(',').includes('freezer')) {
        return { path: path.join('/sys/fs/cgroup/freezer', cgPath, 'freezer.state'), v2: false };
      }
      if (line.startsWith('0::') && cgroups.split('\n').filter(Boolean).length === 1) {
        return { path: path.join('/sys/fs/cgroup', cgPath, 'cgroup.freeze'), v2: true };
      }
    }
    return undefined;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): AppError {
    if (err instanceof AppError) return err;
    const e = err as DockerApiError;
    if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'EACCES') {
      return new DockerUnavailableError(e.message ?? String(err), { cause: err });
    }
    if (e.statusCode === 404) return new ContainerNotFoundError(firstLine(apiMessage(err)));
    return new DockerError(`dockerd: ${firstLine(apiMessage(err))}`, { cause: err });
  }
}

/** dockerd's reason without the path of its own scratch directory. */
function loadRefusal(message: string): string {
  return firstLine(message).replace(/open \S*\/docker-import-\d+\//, 'no entry ');
}

function apiMessage(err: unknown): string {
  const e = err as DockerApiError;
  return e.json?.message ?? e.message ?? String(err);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Recreates the image directory at `from` under `to` as symlinks. Docker tars the checkpoint directory into
 * containerd's content store and containerd unpacks it into /tmp for runc, so links there cost nothing while
 * copies cost seconds per GiB. CRIU opens some images from inside the container's mount
 * namespace, where absolute paths do not exist, so each link climbs from wherever containerd unpacked it to
 * the host's root (extra `..` stop at the root) and names the image from there.
 */
async function linkImages(from: string, to: string): Promise<void> {
  const climb = '../'.repeat(LINK_CLIMB);
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = path.resolve(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) await linkImages(src, dst);
    else if (entry.isFile()) await symlink(`${climb}${src.slice(1)}`, dst);
  }
}

/** Directory depth that an image link climbs out of; containerd unpacks into /tmp or $XDG_RUNTIME_DIR. */
const LINK_CLIMB = 32;
