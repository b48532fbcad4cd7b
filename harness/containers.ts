import { randomBytes } from 'node:crypto';
import { eventually } from './eventually.js';
import net from 'node:net';
import { execa } from 'execa';

export interface RunOptions {
  image: string;
  cmd?: string[];
  env?: Record<string, string>;
  /** Container port to publish on 127.0.0.1 (a free host port). */
  publish?: number;
  name?: string;
  /** A fixed host port for `publish` (default: a free one). */
  hostPort?: number;
  /** `-v` arguments, e.g. "myvolume:/data". */
  volumes?: string[];
  /** Docker's restart policy, e.g. "always". */
  restart?: string;
  /** A console of its own, as `docker run -it`. */
  tty?: boolean;
  /** docker-init as PID 1, as `docker run --init`. */
  init?: boolean;
  /** `docker run --user`. */
  user?: string;
  /** `docker run --runtime`, e.g. "runc" where cryo's runtime is dockerd's default. */
  runtime?: string;
}

/** Containers created by a test, removed by `removeAll` whatever the outcome. */
export class TestContainers {
  private readonly created = new Set<string>();

  uniqueName(prefix: string): string {
    const name = `cryo-test-${prefix}-${randomBytes(4).toString('hex')}`;
    this.created.add(name);
    return name;
  }

  /** Remembers a container (by id or name) for removal. */
  track(ref: string): void {
    this.created.add(ref);
  }

  async run(options: RunOptions): Promise<string> {
    const name = options.name ?? this.uniqueName('c');
    this.created.add(name);
    const args = ['run', '-d', '--name', name];
    for (const [k, v] of Object.entries(options.env ?? {})) args.push('-e', `${k}=${v}`);
    if (options.publish) args.push('-p', `127.0.0.1:${options.hostPort ?? ''}:${options.publish}`);
    for (const v of options.volumes ?? []) args.push('-v', v);
    if (options.restart) args.push('--restart', options.restart);
    if (options.tty) args.push('-it');
    if (options.init) args.push('--init');
    if (options.user) args.push('--user', options.user);
    if (options.runtime) args.push('--runtime', options.runtime);
    args.push(options.image, ...(options.cmd ?? []));
    const { stdout } = await execa('docker', args);
    return stdout.trim();
  }

  async removeAll(): Promise<void> {
    const refs = [...this.created];
    this.created.clear();
    if (refs.length > 0) await execa('docker', ['rm', '-f', ...refs], { reject: false });
  }
}

export interface ContainerState {
  Running: boolean;
  Paused: boolean;
  Status: string;
  /** When Docker last started it: unchanged while a container is frozen and thawed. */
  StartedAt: string;
}

export async function inspect(ref: string): Promise<{
  Id: string;
  Name: string;
  State: ContainerState;
  Config: { Labels: Record<string, string> | null; Tty?: boolean };
  Mounts: { Type: string; Name?: string; Destination: string }[];
}> {
  const { stdout } = await execa('docker', ['inspect', ref]);
  return (JSON.parse(stdout) as never[])[0] as never;
}

export async function hostPort(ref: string, containerPort: number): Promise<number> {
  const { stdout } = await execa('docker', ['port', ref, `${containerPort}/tcp`]);
  const line = stdout.split('\n').find((l) => l.startsWith('127.0.0.1:'));
  if (!line) throw new Error(`container ${ref} publishes no 127.0.0.1 port for ${containerPort}: ${stdout}`);
  return Number(line.split(':')[1]);
}

export async function dockerExec(ref: string, cmd: string[]): Promise<string> {
  const { stdout } = await execa('docker', ['exec', ref, ...cmd]);
  return stdout;
}

export interface CounterReading {
  count: number;
  bootId: string;
  startedAt: string;
  pid: number;
}

/** Reads the counter workload over its published port, retrying while the container comes up. */
export async function readCounter(ref: string, timeoutMs = 15_000): Promise<CounterReading> {
  return readJson<CounterReading>(ref, timeoutMs);
}

export async function readJson<T>(
  ref: string,
  timeoutMs = 15_000,
  containerPort = 8080,
  requestTimeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const port = await hostPort(ref, containerPort);
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(requestTimeoutMs) });
      if (res.ok) return (await res.json()) as T;
      lastError = new Error(`HTTP ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    await sleep(200);
  }
  throw new Error(`container ${ref} did not answer on port ${containerPort}: ${String(lastError)}`);
}

/** Waits until the counter reaches at least `min`. */
export async function counterAtLeast(ref: string, min: number, timeoutMs = 20_000): Promise<CounterReading> {
  return eventually(
    async () => {
      const reading = await readCounter(ref, timeoutMs);
      return reading.count >= min ? reading : undefined;
    },
    { what: `the counter of ${ref} at ${min} or more`, timeoutMs, intervalMs: 100 },
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}
