import { createReadStream } from 'node:fs';
import { chown, lstat, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_COMMAND_DEADLINE, runCommand, type CommandDeadline } from '../exec/run-command.js';
import { ArchiveInvalidError, RootfsUnsupportedError } from '../../domain/errors/index.js';
import {
  DELETED_FILES,
  REMOVED_FILES,
  ROOTFS_DIFF_TAR,
  VOLUMES_DIR,
  volumeRemovedName,
  volumeTarName,
} from '../../domain/layout.js';
import type { MountRecord } from '../../domain/manifest.js';
import { safeRootfsPath } from '../../domain/archive-path.js';
import type {
  DiskRecording,
  RootfsChanges,
  RootfsSource,
  RootfsSummary,
} from '../../services/ports/rootfs-changes.js';
import { sameStamp } from '../archive/file-stamps.js';
import { walkRelative, writeTar } from '../archive/tar-pack.js';
import type { ContainerdCtl, OverlayLayers } from './containerd-ctl.js';
import type { DockerClient } from './docker-client.js';

const KIND_DELETED = 2;
// Docker (and Podman) bind-mount these over the container's own files; they are not the workload's changes.
const DOCKER_MANAGED = [
  '/etc/hostname',
  '/etc/hosts',
  '/etc/resolv.conf',
  '/.dockerenv',
  '/run/.containerenv',
];

interface Change {
  Path: string;
  Kind: number;
}

interface InspectWithDriver {
  GraphDriver: { Name: string; Data: Record<string, string> | null };
  Mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }[];
}

/**
 * Root-filesystem changes read from, and written to, a container's overlay layers: Docker's overlay2 graph
 * driver, or the overlayfs snapshotter of containerd's image store.
 */
export class OverlayRootfsChanges implements RootfsChanges {
  constructor(
    private readonly client: DockerClient,
    private readonly containerd: ContainerdCtl,
    private readonly deadline: CommandDeadline = DEFAULT_COMMAND_DEADLINE,
  ) {}

  async prepare(containerId: string): Promise<RootfsSource> {
    const info = (await this.client.call((d) =>
      d.getContainer(containerId).inspect(),
    )) as unknown as InspectWithDriver;
    const { upper, lowers } = await this.layers(containerId, info);
    return {
      containerId,
      upper,
      lowers,
      mounts: info.Mounts.map((m) => ({
        type: m.Type,
        ...(m.Name !== undefined ? { name: m.Name } : {}),
        source: m.Source,
        destination: m.Destination,
        readOnly: !m.RW,
      })),
    };
  }

  async record(
    { containerId, upper, mounts }: RootfsSource,
    dir: string,
    disk: DiskRecording = {},
  ): Promise<RootfsSummary> {
    const excluded = [...DOCKER_MANAGED, ...mounts.map((m) => m.destination)];
    const skip = (p: string) => excluded.some((e) => p === e || p.startsWith(`${e}/`));
    const listed: unknown = await this.client.call(() => this.client.container(containerId).changes());
    // Docker answers `null` (which dockerode passes on as text) when nothing changed.
    const changes = (Array.isArray(listed) ? listed : []) as Change[];
    const deleted = changes
      .filter((c) => c.Kind === KIND_DELETED && !skip(c.Path))
      .map((c) => c.Path)
      .sort();
    const changed: string[] = [];
    for (const c of changes) {
      if (c.Kind === KIND_DELETED || skip(c.Path)) continue;
      // A modified directory is listed for its changed children; only what lives in the upper layer is new.
      const st = await lstat(path.join(upper, c.Path)).catch(() => undefined);
      if (!st || (st.isCharacterDevice() && st.rdev === 0)) continue;
      if (st.isDirectory() && c.Kind !== 1) continue;
      changed.push(c.Path.replace(/^\//, ''));
    }
    changed.sort();
    const { sent, removed } = await sinceSeed(upper, changed, disk.since?.rootfs);
    await writeTar(upper, sent, path.join(dir, ROOTFS_DIFF_TAR), disk.seed?.rootfs);
    await writeFile(path.join(dir, DELETED_FILES), JSON.stringify(deleted), { mode: 0o600 });
    if (removed) await writePaths(path.join(dir, REMOVED_FILES), removed);
    return {
      changed: sent.length,
      deleted: deleted.length,
      ...(removed ? { removed: removed.length } : {}),
    };
  }

  async apply(containerId: string, dir: string): Promise<void> {
    const container = this.client.container(containerId);
    const info = (await this.client.call(() => container.inspect())) as unknown as InspectWithDriver;
    const { upper, lowers } = await this.layers(containerId, info);
    for (const p of await readPaths(path.join(dir, REMOVED_FILES), true)) await removeBelow(upper, p);
    // Podman writes no deleted.files when nothing was deleted; its restore reads none as nothing.
    for (const p of await readPaths(path.join(dir, DELETED_FILES), true))
      await this.whiteout(upper, lowers, p);
    // Docker extracts the changed files itself, confined to the container's root filesystem.
    const tar = path.join(dir, ROOTFS_DIFF_TAR);
    if (await holdsEntries(tar))
      await this.client.call(() => container.putArchive(createReadStream(tar), { path: '/' }));
  }

  async flush(containerId: string): Promise<void> {
    const info = (await this.client.call((d) =>
      d.getContainer(containerId).inspect(),
    )) as unknown as InspectWithDriver;
    const { upper } = await this.layers(containerId, info);
    const volumes = info.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Source);
    // coreutils' sync -f is syncfs(2), which Node lacks.
    await runCommand('sync', ['-f', upper, ...volumes], this.deadline);
  }

  async recordMounts(
    source: RootfsSource,
    dir: string,
    includeVolumes: boolean,
    disk: DiskRecording = {},
  ): Promise<MountRecord[]> {
    const records: MountRecord[] = [];
    for (const m of source.mounts) {
      let included = false;
      if (m.type === 'volume' && m.name !== undefined && includeVolumes) {
        const volumes = path.join(dir, VOLUMES_DIR);
        await mkdir(volumes, { recursive: true, mode: 0o700 });
        const stamps = disk.seed ? new Map<string, string>() : undefined;
        if (stamps) disk.seed?.volumes.set(m.name, stamps);
        const { sent, removed } = await sinceSeed(
          m.source,
          await walkRelative(m.source),
          disk.since && (disk.since.volumes.get(m.name) ?? new Map<string, string>()),
        );
        await writeTar(m.source, sent, path.join(volumes, volumeTarName(m.name)), stamps);
        if (removed) await writePaths(path.join(volumes, volumeRemovedName(m.name)), removed);
        included = true;
      }
      records.push({ ...m, included });
    }
    return records;
  }

  async applyVolumes(
    containerId: string,
    dir: string,
    mounts: MountRecord[],
    fresh: Set<string>,
  ): Promise<void> {
    const container = this.client.container(containerId);
    const info = (await this.client.call(() => container.inspect())) as unknown as InspectWithDriver;
    for (const record of mounts) {
      if (!record.included || !record.name) continue;
      const now = info.Mounts.find((m) => m.Destination === record.destination && m.Type === 'volume');
      if (!now?.Name || !fresh.has(now.Name)) continue;
      const removed = await readPaths(path.join(dir, VOLUMES_DIR, volumeRemovedName(record.name)), true);
      for (const p of removed) await removeBelow(now.Source, p);
      const tar = path.join(dir, VOLUMES_DIR, volumeTarName(record.name));
      if (await holdsEntries(tar))
        await this.client.call(() =>
          container.putArchive(createReadStream(tar), { path: record.destination }),
        );
    }
  }

  private async layers(containerId: string, info: InspectWithDriver): Promise<OverlayLayers> {
    const { Name: driver, Data: data } = info.GraphDriver;
    // 'overlay': Podman's (containers/storage), the same layout as Docker's overlay2.
    if ((driver === 'overlay2' || driver === 'overlay') && data?.UpperDir)
      return { upper: data.UpperDir, lowers: (data.LowerDir ?? '').split(':').filter(Boolean) };
    // containerd's image store: dockerd reports no layers, containerd's snapshot of the container has them.
    const layers = driver === 'overlayfs' ? await this.containerd.snapshotLayers(containerId) : undefined;
    if (!layers) throw new RootfsUnsupportedError(driver);
    return layers;
  }

  /** Hides `p` of the image in a new container: an overlay whiteout (a 0:0 character device) in the upper layer. */
  private async whiteout(upper: string, lowers: string[], p: string): Promise<void> {
    const parts = p.split('/').filter(Boolean);
    let rel = '';
    for (const part of parts.slice(0, -1)) {
      rel = `${rel}/${part}`;
      const target = path.join(upper, rel);
      const st = await lstat(target).catch(() => undefined);
      if (st?.isDirectory()) continue;
      if (st)
        throw new ArchiveInvalidError(
          `cannot delete ${p}: ${rel} is not a directory`,
          'the archive does not fit this image',
        );
      const lower = await firstLstat(lowers, rel);
      if (!lower?.isDirectory()) return; // the image has no such directory, so nothing to hide
      await mkdir(target, { mode: lower.mode & 0o7777 });
      await chown(target, lower.uid, lower.gid);
      await utimes(target, lower.atime, lower.mtime);
    }
    const target = path.join(upper, p);
    await rm(target, { recursive: true, force: true });
    await runCommand('mknod', [target, 'c', '0', '0'], this.deadline);
  }
}

async function firstLstat(roots: string[], rel: string) {
  for (const root of roots) {
    const st = await lstat(path.join(root, rel)).catch(() => undefined);
    if (st) return st;
  }
  return undefined;
}

/**
 * Of `paths` (relative to `root`), those that changed since the seed recorded them, and the seed's paths that are
 * gone; everything and nothing without a seed.
 */
async function sinceSeed(
  root: string,
  paths: string[],
  seed: Map<string, string> | undefined,
): Promise<{ sent: string[]; removed?: string[] }> {
  if (!seed) return { sent: paths };
  const sent: string[] = [];
  for (const rel of paths) {
    const st = await lstat(path.join(root, rel), { bigint: true }).catch(() => undefined);
    if (!st || !sameStamp(seed.get(rel), st)) sent.push(rel);
  }
  const now = new Set(paths);
  return { sent, removed: [...seed.keys()].filter((p) => !now.has(p)).sort() };
}

/** Writes paths relative to a root as removed.files holds them: a JSON list of absolute paths. */
async function writePaths(file: string, relative: string[]): Promise<void> {
  await writeFile(file, JSON.stringify(relative.map((p) => `/${p}`)), { mode: 0o600 });
}

/** A JSON list of absolute paths without "..", as deleted.files and removed.files hold them. */
async function readPaths(file: string, optional = false): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (optional && err.code === 'ENOENT') return '[]';
    throw err;
  });
  const name = path.basename(file);
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw new ArchiveInvalidError(`${name} is not JSON`, 'export the checkpoint again');
  }
  if (!Array.isArray(list))
    throw new ArchiveInvalidError(`${name} is not a list`, 'export the checkpoint again');
  return list.map((raw) => {
    const p = typeof raw === 'string' ? safeRootfsPath(raw) : undefined;
    if (!p)
      throw new ArchiveInvalidError(
        `${name} names an unsafe path: ${String(raw)}`,
        'paths must be absolute without ".."',
      );
    return p;
  });
}

/** Removes `p` below `root`, never through a symlink: a path whose parents are not all directories is left. */
async function removeBelow(root: string, p: string): Promise<void> {
  const parts = p.split('/').filter(Boolean);
  let at = root;
  for (const part of parts.slice(0, -1)) {
    at = path.join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st?.isDirectory()) return;
  }
  if (parts.length > 0) await rm(path.join(root, ...parts), { recursive: true, force: true });
}

/** An empty tar is its two zero blocks: Docker need not be asked to extract it. */
async function holdsEntries(tar: string): Promise<boolean> {
  return (await stat(tar)).size > EMPTY_TAR_BYTES;
}

const EMPTY_TAR_BYTES = 1024;
