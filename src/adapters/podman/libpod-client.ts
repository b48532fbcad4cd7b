import http from 'node:http';
import { DEADLINES } from '../../defaults.js';
import {
  type AppError,
  ContainerNotFoundError,
  DeadlineExceededError,
  PodmanError,
} from '../../domain/errors/index.js';
import { translateDockerError } from '../docker/docker-client.js';

/** The libpod API version cryo speaks: Podman 4.0 and later answer it (Podman 5 too). */
const LIBPOD_PREFIX = '/v4.0.0/libpod';

/** What a libpod call answered: its status and its JSON body. */
interface LibpodAnswer {
  status: number;
  body: unknown;
}

/**
 * Podman's own API (libpod) on `podman system service`'s socket, for what its Docker-compatible API lacks:
 * checkpoint, restore, init, and where a container keeps its files. Every call ends once its socket has been
 * silent for `timeoutMs`.
 */
export class LibpodClient {
  constructor(
    readonly socketPath: string,
    readonly timeoutMs: number = DEADLINES.docker.ms,
  ) {}

  /** GET a libpod path; 404 answers undefined. */
  async get<T>(path: string): Promise<T | undefined> {
    const answer = await this.request('GET', path, {});
    if (answer.status === 404) return undefined;
    return this.ok<T>(answer, path);
  }

  /** POST to a libpod path with a query; 404 is ContainerNotFoundError. */
  async post<T>(path: string, query: Record<string, string | boolean>): Promise<T> {
    return this.ok<T>(await this.request('POST', path, query), path);
  }

  private ok<T>(answer: LibpodAnswer, path: string): T {
    // 304: already so (a container already stopped).
    if ((answer.status >= 200 && answer.status < 300) || answer.status === 304) return answer.body as T;
    const message = messageOf(answer.body) ?? `HTTP ${answer.status} for ${path}`;
    if (answer.status === 404) throw new ContainerNotFoundError(message);
    throw new PodmanError(message, { cause: answer.body });
  }

  private request(
    method: string,
    path: string,
    query: Record<string, string | boolean>,
  ): Promise<LibpodAnswer> {
    const search = new URLSearchParams(
      Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          method,
          path: `${LIBPOD_PREFIX}${path}${search ? `?${search}` : ''}`,
          headers: { host: 'podman' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(this.failure(err)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              // Not JSON: the text itself is the answer.
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new DeadlineExceededError('podman', this.timeoutMs, DEADLINES.docker.setting)),
      );
      req.on('error', (err) => reject(this.failure(err)));
      req.end();
    });
  }

  private failure(err: Error): AppError {
    return translateDockerError(err, this.socketPath);
  }
}

function messageOf(body: unknown): string | undefined {
  if (typeof body === 'string' && body.trim()) return body.trim();
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}
