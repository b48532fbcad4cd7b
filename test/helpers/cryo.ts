import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { startServer, type Server } from '../../src/server.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** A real cryo service on a free loopback port with its own data directory. */
export class TestCryo {
  private constructor(
    readonly dataDir: string,
    private server: Server,
    private readonly ownsDataDir: boolean,
  ) {}

  static async start(options: { dataDir?: string; token?: string } = {}): Promise<TestCryo> {
    const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'cryo-test-data-')));
    const server = await startServer(
      loadConfig(
        {},
        {
          listen: '127.0.0.1:0',
          dataDir,
          logLevel: process.env.CRYO_TEST_LOG_LEVEL ?? 'fatal',
          ...(options.token ? { token: options.token } : {}),
        },
      ),
    );
    return new TestCryo(dataDir, server, options.dataDir === undefined);
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
    this.server = await startServer(
      loadConfig(
        {},
        {
          listen: '127.0.0.1:0',
          dataDir: this.dataDir,
          logLevel: process.env.CRYO_TEST_LOG_LEVEL ?? 'fatal',
        },
      ),
    );
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

  async stop(): Promise<void> {
    await this.server.close();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}
