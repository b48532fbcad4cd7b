import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CheckpointApplication, ContainerCriuOptions } from '../../domain/checkpoint.js';
import {
  ARCHIVE_FORMAT_VERSION,
  CONFIG_DUMP,
  CRYO_MANIFEST,
  DOCKER_CONFIG,
  NETWORK_STATUS,
  SPEC_DUMP,
} from '../../domain/layout.js';
import {
  ManifestSchema,
  type Manifest,
  type ManifestEntry,
  type MountRecord,
} from '../../domain/manifest.js';
import { CRYO_VERSION } from '../../version.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import { configDump, networkStatus, portableSpec } from '../support/engine-configs.js';
import type { HostInfo } from '../../domain/host-info.js';
import type { ApplicationCut } from '../sidecar/sidecar-service.js';

export interface ManifestParts {
  container: ContainerInfo;
  /** The diff ids of the container's image layers, when the engine tells them. */
  imageLayers: string[] | undefined;
  createdAt: Date;
  /** The host that dumped it, with the CRIU that did ('' when no CRIU image was made). */
  source: HostInfo & { criuVersion: string };
  mounts: MountRecord[];
  rootfs: Manifest['rootfs'];
  checkpoint: Manifest['checkpoint'];
  /** Without them, the entries are hashed on the first export. */
  entries?: ManifestEntry[];
}

/** cryo.json of a container checkpoint. */
export function buildManifest(parts: ManifestParts): Manifest {
  const { container, createdAt } = parts;
  return {
    formatVersion: ARCHIVE_FORMAT_VERSION,
    cryoVersion: CRYO_VERSION,
    createdAt: createdAt.toISOString(),
    checkpoint: parts.checkpoint,
    container: { id: container.id, name: container.name },
    image: {
      ref: container.image,
      id: container.imageId,
      ...(parts.imageLayers ? { layers: parts.imageLayers } : {}),
    },
    source: parts.source,
    mounts: parts.mounts,
    rootfs: parts.rootfs,
    entries: parts.entries ?? [],
  };
}

/**
 * A checkpoint's metadata: the engine's configs (writeConfigs), then cryo.json, which names the checkpoint; with
 * `listEntries`, every file (the configs included) is hashed into cryo.json once they are all there.
 */
export async function writeMetadata(
  dir: string,
  parts: ManifestParts & { spec: unknown },
  listEntries?: () => Promise<ManifestEntry[]>,
): Promise<void> {
  await writeConfigs(dir, parts.container, parts.createdAt, parts.spec);
  const entries = listEntries ? await listEntries() : parts.entries;
  await writeJson(
    path.join(dir, CRYO_MANIFEST),
    buildManifest({ ...parts, ...(entries ? { entries } : {}) }),
  );
}

export async function readManifest(dir: string): Promise<Manifest> {
  return ManifestSchema.parse(JSON.parse(await readFile(path.join(dir, CRYO_MANIFEST), 'utf8')));
}

/** Docker's config, config.dump, spec.dump and (when known) network.status: what a restore elsewhere needs. */
export async function writeConfigs(
  dir: string,
  container: ContainerInfo,
  createdAt: Date,
  spec: unknown,
): Promise<void> {
  const network = networkStatus(container.config);
  await writeJson(path.join(dir, DOCKER_CONFIG), container.config);
  await writeJson(path.join(dir, CONFIG_DUMP), configDump(container.config, createdAt));
  await writeJson(path.join(dir, SPEC_DUMP), portableSpec(spec));
  if (network) await writeJson(path.join(dir, NETWORK_STATUS), network);
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(value, null, 2), { mode: 0o600 });
}

/** What the catalog and cryo.json keep of an operator cut. */
export function applicationOf(cut: ApplicationCut): CheckpointApplication {
  return {
    job: cut.job,
    checkpointId: cut.checkpointId,
    mode: cut.mode,
    subtasks: cut.subtasks,
    stateBytes: cut.stateBytes,
  };
}

/** The CRIU options a checkpoint was dumped with, which its restore needs too. */
export function criuOf(manifest: Manifest): ContainerCriuOptions {
  return manifest.checkpoint.criu ?? { tcpEstablished: false, fileLocks: false, externalUnixSockets: false };
}
