import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ArchiveInvalidError } from '../../domain/errors/index.js';
import {
  ARCHIVE_FORMAT_VERSION,
  CHECKPOINT_IMAGES_DIR,
  CONFIG_DUMP,
  CRYO_MANIFEST,
  DELETED_FILES,
  DOCKER_CONFIG,
  ROOTFS_DIFF_TAR,
  SPEC_DUMP,
} from '../../domain/layout.js';
import type { Manifest } from '../../domain/manifest.js';
import { CRYO_VERSION } from '../../version.js';
import { writeJson } from '../checkpoint/manifest.js';
import type { ArchiveCodec } from '../ports/archive-codec.js';
import type { ForeignImages } from '../ports/foreign-images.js';
import { dockerConfigFromPodman, PODMAN_OWN_MOUNTS } from '../support/engine-configs.js';

/** What cryo reads of Podman's config.dump (libpod's ContainerConfig, the same keys in 4.3 and 5.8). */
const PodmanConfigSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string().min(1).max(256),
  rootfsImageID: z.string().regex(/^[0-9a-f]{64}$/),
  rootfsImageName: z.string().min(1).max(512),
  namedVolumes: z.array(z.object({ Name: z.string() }).passthrough()).nullish(),
  newPortMappings: z
    .array(
      z
        .object({
          container_port: z.number().int(),
          protocol: z.string().optional(),
          host_ip: z.string().optional(),
        })
        .passthrough(),
    )
    .nullish(),
  labels: z.record(z.string(), z.string()).nullish(),
});

const PodmanSpecSchema = z.object({
  hostname: z.string().optional(),
  process: z.object({
    args: z.array(z.string()).min(1),
    env: z.array(z.string()).optional(),
    cwd: z.string(),
    user: z.object({ uid: z.number().int(), gid: z.number().int() }),
  }),
  mounts: z
    .array(z.object({ destination: z.string(), type: z.string().optional() }).passthrough())
    .optional(),
});

export interface AdoptPodmanDeps {
  codec: ArchiveCodec;
  foreign: ForeignImages;
}

/**
 * Makes a Podman `--export` archive, extracted into `dir`, a checkpoint cryo restores into Docker: Docker's
 * container config made from Podman's config.dump and spec.dump, the images made to restore into the network
 * namespace Docker sets up, and cryo.json. Refuses, before anything is published, what does not cross yet.
 */
export async function adoptPodmanArchive(
  dir: string,
  id: string,
  now: Date,
  deps: AdoptPodmanDeps,
): Promise<Manifest> {
  const config = await readPodmanJson(dir, CONFIG_DUMP, PodmanConfigSchema);
  const spec = await readPodmanJson(dir, SPEC_DUMP, PodmanSpecSchema);
  if ((config.namedVolumes ?? []).length > 0)
    throw new ArchiveInvalidError(
      `the Podman checkpoint has named volumes (${config.namedVolumes!.map((v) => v.Name).join(', ')}), which do not cross to Docker yet`,
      'checkpoint a container without named volumes, or move the volume by hand',
    );
  const binds = (spec.mounts ?? []).filter(
    (m) => m.type === 'bind' && !PODMAN_OWN_MOUNTS.includes(m.destination),
  );
  if (binds.length > 0)
    throw new ArchiveInvalidError(
      `the Podman checkpoint has bind mounts (${binds.map((m) => m.destination).join(', ')}), which do not cross to Docker yet`,
      'checkpoint a container without bind mounts',
    );

  const images = path.join(dir, CHECKPOINT_IMAGES_DIR);
  const { machine } = await deps.foreign.fromPodman(images).catch((err: Error) => {
    throw new ArchiveInvalidError(`its CRIU images are not readable: ${err.message}`, 'export it again');
  });
  if (!machine)
    throw new ArchiveInvalidError('its CRIU images name no architecture cryo knows', 'export it again');
  const docker = dockerConfigFromPodman(config, spec, await deps.foreign.podmanBindFiles());
  await writeJson(path.join(dir, DOCKER_CONFIG), docker);

  const deleted = await readFile(path.join(dir, DELETED_FILES), 'utf8').then(
    (t) => (JSON.parse(t) as unknown[]).length,
    () => 0,
  );
  const changed = await deps.codec.countFiles(path.join(dir, ROOTFS_DIFF_TAR)).catch(() => 0);
  const manifest: Manifest = {
    formatVersion: ARCHIVE_FORMAT_VERSION,
    cryoVersion: CRYO_VERSION,
    createdAt: now.toISOString(),
    checkpoint: { id, name: `podman-${compactTime(now)}`, leaveRunning: false, dumpMs: 0 },
    container: { id: config.id, name: config.name },
    image: { ref: dockerName(config.rootfsImageName), id: `sha256:${config.rootfsImageID}` },
    // Podman's archive does not say which kernel and CRIU dumped it: CRIU's own checks are what is left.
    source: { kernel: '', criuVersion: '', arch: machine, hostname: '' },
    mounts: [],
    rootfs: { changed, deleted },
    entries: await deps.codec.describe(dir),
  };
  await writeJson(path.join(dir, CRYO_MANIFEST), manifest);
  return manifest;
}

async function readPodmanJson<T>(dir: string, name: string, schema: z.ZodType<T>): Promise<T> {
  const text = await readFile(path.join(dir, name), 'utf8').catch(() => undefined);
  if (text === undefined)
    throw new ArchiveInvalidError(
      `the archive has neither ${CRYO_MANIFEST} first nor a ${name}: it is neither cryo's nor Podman's`,
      'import an archive made by cryo export or podman container checkpoint --export',
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ArchiveInvalidError(`${name} is not JSON`, 'export the checkpoint again');
  }
  const result = schema.safeParse(parsed);
  if (!result.success)
    throw new ArchiveInvalidError(
      `${name} is not Podman's: ${result.error.issues[0]?.path.join('.')} ${result.error.issues[0]?.message}`,
      'import an archive made by podman container checkpoint --export',
    );
  return result.data;
}

/** Podman's fully qualified name as Docker names the same image: `localhost/x` and `docker.io/library/x` are `x`. */
function dockerName(name: string): string {
  return name.replace(/^localhost\//, '').replace(/^docker\.io\/(library\/)?/, '');
}

function compactTime(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
