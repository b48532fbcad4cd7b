import { rm, stat, writeFile } from 'node:fs/promises';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import type { DockerClient } from './docker-client.js';
import { criuConfigLines } from './runc-checkpointer.js';
import { CROSS_ENGINE_CRIU_OPTIONS } from '../../domain/cross-engine.js';
import { LABEL_SOURCE_ENGINE } from '../../domain/labels.js';

/**
 * Puts a file back as it was (`null`: it did not exist); also after a crash. Older cryo wrote a restore's CRIU
 * options into /etc/criu/runc.conf, and their journal entries are still undone with this.
 */
export async function putBackFile(file: string, before: string | null): Promise<void> {
  if (before === null) await rm(file, { force: true });
  else await writeFile(file, before);
}

/**
 * CRIU's mount engine for a restore of this container. CRIU 4.2's mount-v2 cannot restore a single file
 * bind-mounted from the host (`-v ./app.conf:/etc/app.conf`, or docker-init with `--init`) here ("Can't remount
 * ... with MS_PRIVATE: No such file or directory"); its compat engine can.
 */
export async function mountEngineLines(client: DockerClient, containerId: string): Promise<string[]> {
  const raw = await client.call(() => client.container(containerId).inspect());
  // Another engine's checkpoint: its root's sharing and its root directory's mode are that engine's.
  if (raw.Config.Labels?.[LABEL_SOURCE_ENGINE]) return [...CROSS_ENGINE_CRIU_OPTIONS];
  if (raw.HostConfig.Init === true) return ['mntns-compat-mode'];
  for (const m of raw.Mounts ?? []) {
    if (m.Type !== 'bind' || !m.Source) continue;
    if ((await stat(m.Source).catch(() => undefined))?.isFile()) return ['mntns-compat-mode'];
  }
  return [];
}

/**
 * The lines of a CRIU configuration file that a restore of this container needs: its dump's options, but the
 * ghost limit (a dump's), and the mount engine.
 */
export async function restoreConfigLines(
  client: DockerClient,
  containerId: string,
  criu: ContainerCriuOptions,
): Promise<string[]> {
  return [
    ...criuConfigLines({ ...criu, ghostLimitBytes: undefined }),
    ...(await mountEngineLines(client, containerId)),
  ];
}
