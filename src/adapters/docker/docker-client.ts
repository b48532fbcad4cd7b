import Docker from 'dockerode';
import { DEADLINES } from '../../defaults.js';
import {
  AppError,
  ContainerNotFoundError,
  DeadlineExceededError,
  DockerError,
  DockerUnavailableError,
  PodmanError,
  PodmanUnavailableError,
} from '../../domain/errors/index.js';

/** What dockerode's errors carry. */
export interface DockerApiError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string } | null;
}

/** Checkpoint methods that dockerode has but @types/dockerode does not declare. */
export interface CheckpointingContainer {
  createCheckpoint(opts: { CheckpointID: string; CheckpointDir: string; Exit: boolean }): Promise<unknown>;
  start(opts: { _query: { checkpoint: string }; _body: Record<string, never> }): Promise<unknown>;
  listCheckpoint(): Promise<{ Name: string }[] | null>;
  deleteCheckpoint(name: string): Promise<unknown>;
}

/** The one dockerode client of a dockerd, and the one translation of its errors into cryo's. */
export class DockerClient {
  readonly api: Docker;
  private rootDir: string | undefined;

  /**
   * Every request to dockerd, `docker start` of a restore included, is ended once its socket has been silent for
   * `timeoutMs` (docker-modem's request timeout): a stopped or hung dockerd can hold no request, or frozen workload,
   * forever. Streams (image save and load) go on as long as their bytes flow.
   */
  constructor(
    private readonly socketPath = '/var/run/docker.sock',
    readonly timeoutMs: number = DEADLINES.docker.ms,
    /** Whose Docker-compatible API this is: Podman's service answers it too (CRYO_ENGINE=podman). */
    private readonly engine: 'docker' | 'podman' = 'docker',
  ) {
    this.api = new Docker({ socketPath, timeout: timeoutMs });
  }

  /** Runs a Docker call; whatever it throws comes out as an AppError. */
  async call<T>(fn: (docker: Docker) => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await fn(this.api);
    } catch (err) {
      throw this.failure(err, started);
    }
  }

  /** Like `call`, but the given status codes answer `onStatus` instead of failing (404 for "not there"). */
  async callOr<T, U>(fn: (docker: Docker) => Promise<T>, statuses: number[], onStatus: U): Promise<T | U> {
    const started = performance.now();
    try {
      return await fn(this.api);
    } catch (err) {
      const status = (err as DockerApiError).statusCode;
      if (status !== undefined && statuses.includes(status)) return onStatus;
      throw this.failure(err, started);
    }
  }

  /** A request that docker-modem ended for its silence says so; anything else is translated as it is. */
  private failure(err: unknown, started: number): AppError {
    const silent =
      (err as DockerApiError).code === 'ECONNRESET' && performance.now() - started >= this.timeoutMs;
    const what = this.engine === 'podman' ? 'podman' : 'dockerd';
    if (silent)
      return new DeadlineExceededError(what, this.timeoutMs, DEADLINES.docker.setting, { cause: err });
    return this.translate(err);
  }

  translate(err: unknown): AppError {
    return translateDockerError(err, this.engine === 'podman' ? this.socketPath : undefined);
  }

  container(id: string): Docker.Container {
    return this.api.getContainer(id);
  }

  checkpointApi(id: string): CheckpointingContainer {
    return this.api.getContainer(id) as unknown as CheckpointingContainer;
  }

  /** dockerd's --data-root. */
  async dockerRootDir(): Promise<string> {
    if (!this.rootDir) {
      const info = (await this.call((d) => d.info())) as { DockerRootDir: string };
      this.rootDir = info.DockerRootDir;
    }
    return this.rootDir;
  }
}

/**
 * cryo's error for a failure of a Docker-compatible API: dockerd's, or with `podmanSocket` Podman's service on
 * that socket (its libpod API too).
 */
export function translateDockerError(err: unknown, podmanSocket?: string): AppError {
  if (err instanceof AppError) return err;
  const e = err as DockerApiError;
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'EACCES') {
    const message = e.message ?? String(err);
    return podmanSocket === undefined
      ? new DockerUnavailableError(message, { cause: err })
      : new PodmanUnavailableError(podmanSocket, message, { cause: err });
  }
  if (e.statusCode === 404) return new ContainerNotFoundError(firstLine(apiMessage(err)));
  return podmanSocket === undefined
    ? new DockerError(`dockerd: ${firstLine(apiMessage(err))}`, { cause: err })
    : new PodmanError(firstLine(apiMessage(err)), { cause: err });
}

export function apiMessage(err: unknown): string {
  const e = err as DockerApiError;
  return e.json?.message ?? e.message ?? String(err);
}

export function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
