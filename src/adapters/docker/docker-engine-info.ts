import type { EngineInfo, RuntimeVersion } from '../../services/ports/container-runtime.js';
import { CRYO_RUNTIME } from './cryo-runtime-restore.js';
import type { DockerClient } from './docker-client.js';

/** The first Docker whose `start --checkpoint` binds /proc/0/ns/net (moby/moby#50750). */
export const FIRST_BROKEN_CHECKPOINT_START = 28;

interface DockerInfo {
  Driver?: string;
  DriverStatus?: [string, string][];
  Runtimes?: Record<string, unknown>;
  DefaultRuntime?: string;
}

/** dockerd's version, store and runtimes, and so the restore path it offers. */
export class DockerEngineInfo implements EngineInfo {
  constructor(private readonly client: DockerClient) {}

  async version(): Promise<RuntimeVersion> {
    const [v, info] = await Promise.all([
      this.client.call((d) => d.version()),
      this.client.call((d) => d.info() as Promise<DockerInfo>),
    ]);
    const cryoRuntime = Object.hasOwn(info.Runtimes ?? {}, CRYO_RUNTIME);
    const checkpointStart = majorVersion(v.Version) < FIRST_BROKEN_CHECKPOINT_START;
    return {
      engine: 'docker',
      version: v.Version,
      experimental: Boolean((v as { Experimental?: boolean }).Experimental),
      storageDriver: info.Driver ?? 'unknown',
      containerdStore: (info.DriverStatus ?? []).some(([k]) => k === 'driver-type'),
      cryoRuntime,
      defaultRuntime: info.DefaultRuntime ?? 'runc',
      restorePath: cryoRuntime ? 'cryo-runtime' : checkpointStart ? 'docker-checkpoint' : 'none',
    };
  }
}

export function majorVersion(version: string): number {
  return Number.parseInt(version, 10) || 0;
}
