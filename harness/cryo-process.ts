import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort, sleep } from './containers.js';
import { repoRoot } from './prerequisites.js';

/**
 * cryo as its own process (dist/src/main.js serve) on a free loopback port with its own data directory: its
 * CPU, memory and event loop are its own, as on a host of its own.
 */
export class CryoProcess {
  private constructor(
    readonly url: string,
    readonly token: string,
    readonly work: string,
    private readonly child: ResultPromise,
  ) {}

  /** `env` adds CRYO_* settings (another Docker socket, say). */
  static async start(
    env: Record<string, string> = {},
    /**
     * A work directory of an earlier process (its data and token), to start again on the same state; with its
     * url, on the same address too (as a host's cryo restarts, so that a peer's calls reach it again).
     */
    again?: { work: string; token: string; url?: string },
  ): Promise<CryoProcess> {
    const work = again?.work ?? (await mkdtemp(path.join(os.tmpdir(), 'cryo-bench-')));
    const token = again?.token ?? randomBytes(24).toString('hex');
    const port = again?.url ? Number(new URL(again.url).port) : await freePort();
    // As native-scripts/start-cryo.sh runs it.
    const child = execa(
      'node',
      ['--max-semi-space-size=2', path.join(repoRoot, 'dist/src/main.js'), 'serve'],
      {
        env: {
          CRYO_DATA_DIR: path.join(work, 'data'),
          CRYO_LISTEN: `127.0.0.1:${port}`,
          CRYO_TOKEN: token,
          CRYO_LOG_LEVEL: 'warn',
          ...env,
        },
        reject: false,
        stdout: 'ignore',
        stderr: 'inherit',
      },
    );
    const cryo = new CryoProcess(`http://127.0.0.1:${port}`, token, work, child);
    for (let i = 0; ; i++) {
      const up = await fetch(`${cryo.url}/v1/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) return cryo;
      if (i === 100 || child.exitCode !== null) {
        await cryo.stop();
        throw new Error('cryo did not come up');
      }
      await sleep(200);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Whether the process has ended (crashed, when nobody stopped it). */
  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  api<T = Record<string, unknown>>(method: string, urlPath: string, body?: unknown): Promise<T> {
    return callApi<T>(this, method, urlPath, body);
  }

  /** kill -9, as a crash; the data directory stays for `start(env, {work, token})`. */
  async crash(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.child;
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.child;
    await rm(this.work, { recursive: true, force: true });
  }
}

/** Calls a cryo's API with its token; anything but 2xx throws with the answer. */
export async function callApi<T = Record<string, unknown>>(
  cryo: { url: string; token: string },
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${cryo.url}${urlPath}`, {
    method,
    headers: {
      authorization: `Bearer ${cryo.token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}
