import type { EngineInfo, RuntimeVersion } from '../../services/ports/container-runtime.js';
import type { LibpodClient } from './libpod-client.js';

interface LibpodInfo {
  host?: { ociRuntime?: { name?: string } };
  store?: { graphDriverName?: string };
  version?: { Version?: string };
}

/** Podman's version, storage and OCI runtime, from libpod's /info. */
export class PodmanEngineInfo implements EngineInfo {
  constructor(private readonly libpod: LibpodClient) {}

  async version(): Promise<RuntimeVersion> {
    const info = (await this.libpod.get<LibpodInfo>('/info')) ?? {};
    return {
      engine: 'podman',
      version: info.version?.Version ?? 'unknown',
      // Podman's checkpoint and restore need no experimental mode.
      experimental: true,
      storageDriver: info.store?.graphDriverName ?? 'unknown',
      containerdStore: false,
      cryoRuntime: false,
      defaultRuntime: info.host?.ociRuntime?.name ?? 'runc',
      restorePath: 'podman',
    };
  }
}
