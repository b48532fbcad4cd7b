import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { loadConfig, type Config } from '../src/config.js';
import { startServer, type Server } from '../src/server.js';
import { engineEnv } from './engine.js';
import { repoRoot } from './prerequisites.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export type TestCryoOptions = Partial<Record<keyof Config, unknown>>;

/** A real cryo service on a free loopback port with its own data directory. */
export class TestCryo {
  private constructor(
    readonly dataDir: string,
    private server: Server,
    private readonly options: TestCryoOptions,
    private readonly ownsDataDir: boolean,
  ) {}

  static async start(options: TestCryoOptions = {}): Promise<TestCryo> {
    const given = typeof options.dataDir === 'string' ? options.dataDir : undefined;
    const dataDir = given ?? (await mkdtemp(path.join(os.tmpdir(), 'cryo-test-data-')));
    const server = await startServer(TestCryo.config(dataDir, options));
    return new TestCryo(dataDir, server, options, given === undefined);
  }

  private static config(dataDir: string, options: TestCryoOptions): Config {
    return loadConfig(engineEnv(), {
      listen: '127.0.0.1:0',
      logLevel: process.env.CRYO_TEST_LOG_LEVEL ?? 'fatal',
      ...options,
      dataDir,
    });
  }

  get token(): string {
    return this.server.token;
  }

  get url(): string {
    return this.server.url;
  }

  /** Stops the service and starts it again on the same data directory. */
  async restart(): Promise<void> {
    await this.server.close();
    this.server = await startServer(TestCryo.config(this.dataDir, this.options));
  }

  async api<T = Record<string, unknown>>(
    method: string,
    urlPath: string,
    body?: unknown,
    token: string | null = this.token,
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.url}${urlPath}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** The `cryo` command as users run it, pointed at this service (CRYO_URL, CRYO_TOKEN; flags in `args` win). */
  cli(args: string[]) {
    return execa('node', [path.join(repoRoot, 'dist/src/main.js'), ...args], {
      env: { CRYO_URL: this.url, CRYO_TOKEN: this.token },
      reject: false,
    });
  }

  /** The `cryo` command's JSON answer; a failed command throws with its stderr. */
  async cliJson<T>(args: string[]): Promise<T> {
    const result = await this.cli(args);
    if (result.exitCode !== 0) throw new Error(`cryo ${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  /** Downloads an exported archive. */
  async download(id: string, compress = 'none', format = 'cryo'): Promise<Buffer> {
    const res = await fetch(
      `${this.url}/v1/checkpoints/${id}/archive?compress=${compress}&format=${format}`,
      {
        headers: { authorization: `Bearer ${this.token}` },
      },
    );
    if (!res.ok) throw new Error(`export of ${id} failed: ${res.status} ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }

  /** Uploads an archive to POST /v1/checkpoints. */
  async upload<T = Record<string, unknown>>(
    archive: Buffer,
    contentType = 'application/x-tar',
  ): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.url}/v1/checkpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': contentType },
      body: archive,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  async stop(): Promise<void> {
    await this.server.close();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}
