import os from 'node:os';
import type { Health } from '../../domain/health.js';
import type { CheckpointEngine } from '../ports/checkpoint-engine.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';

/** Reports whether this host can checkpoint: Docker with experimental features, and a working CRIU. */
export class HealthService {
  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly engine: CheckpointEngine,
  ) {}

  async health(): Promise<Health> {
    const [docker, criu] = await Promise.all([this.dockerHealth(), this.criuHealth()]);
    return {
      status:
        docker.ok && docker.experimental && docker.restorePath !== 'none' && criu.ok ? 'ok' : 'degraded',
      docker,
      criu,
      kernel: os.release(),
    };
  }

  private async dockerHealth(): Promise<Health['docker']> {
    try {
      return { ok: true, ...(await this.runtime.version()) };
    } catch (err) {
      return { ok: false, experimental: false, error: (err as Error).message };
    }
  }

  private async criuHealth(): Promise<Health['criu']> {
    try {
      const version = await this.engine.version();
      return { ok: true, version };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }
}
