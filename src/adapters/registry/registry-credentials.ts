import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Docker's client configuration: `auths`, keyed by registry host (or an https:// URL of it). */
interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
}

/** Where Docker's CLI keeps its logins: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function defaultAuthFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker'), 'config.json');
}

/**
 * The login for `registry` in a Docker config.json (`docker login` writes it); undefined when the file or the
 * entry is not there. Credential helpers (credsStore) are not run: cryo never executes what a file names.
 */
export async function credentialsFor(
  file: string,
  registry: string,
): Promise<RegistryCredentials | undefined> {
  let config: DockerConfig;
  try {
    config = JSON.parse(await readFile(file, 'utf8')) as DockerConfig;
  } catch {
    return undefined;
  }
  const auths = config.auths ?? {};
  const entry =
    auths[registry] ??
    Object.entries(auths).find(
      ([key]) => key.replace(/^https?:\/\//, '').replace(/\/.*$/, '') === registry,
    )?.[1];
  if (!entry) return undefined;
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  if (!entry.auth) return undefined;
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
