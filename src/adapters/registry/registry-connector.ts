import { readFile } from 'node:fs/promises';
import type { RegistryConnector } from '../../services/ports/checkpoint-registry.js';
import { OciRegistryClient } from './oci-registry-client.js';
import { credentialsFor } from './registry-credentials.js';

export interface RegistrySettings {
  /** Docker's config.json, whose `auths` hold the logins (CRYO_REGISTRY_AUTH_FILE). */
  authFile: string;
  /** A CA of the user's own, trusted besides the system's (CRYO_REGISTRY_CA_FILE). */
  caFile?: string;
  /** Registries reached over plain HTTP (CRYO_REGISTRY_INSECURE); one on loopback is when it has no TLS, as with Docker. */
  insecure: readonly string[];
  timeoutMs: number;
  retryDelaysMs?: readonly number[];
}

/** Registries as the settings say to reach them; the login and the CA are read afresh for each connection. */
export function registryConnector(settings: RegistrySettings): RegistryConnector {
  return async (registry) => {
    const [credentials, ca] = await Promise.all([
      credentialsFor(settings.authFile, registry),
      settings.caFile ? readFile(settings.caFile, 'utf8') : undefined,
    ]);
    return new OciRegistryClient(registry, {
      insecure: settings.insecure.includes(registry) ? true : onLoopback(registry) ? 'fallback' : false,
      timeoutMs: settings.timeoutMs,
      ...(credentials ? { credentials } : {}),
      ...(ca ? { ca } : {}),
      ...(settings.retryDelaysMs ? { retryDelaysMs: settings.retryDelaysMs } : {}),
    });
  };
}

function onLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
