import type { MountRecord } from '../../domain/manifest.js';

export interface RootfsSummary {
  changed: number;
  deleted: number;
  /** With `since`: paths that the seed sent and that are gone since. */
  removed?: number;
}

/** What a disk pre-copy's seed recorded of each path it sent (an opaque stamp), in the rootfs and each volume. */
export interface DiskIndex {
  rootfs: Map<string, string>;
  volumes: Map<string, Map<string, string>>;
}

/** `seed`: fill this index while recording everything; `since`: record only what changed since that seed. */
export interface DiskRecording {
  seed?: DiskIndex;
  since?: DiskIndex;
}

/**
 * Where a container's files live, read before it is frozen: the engine answers slowly while it handles the exit
 * that a stop-mode dump causes (Docker 20.10 holds the container's lock for a few hundred ms), and none of it
 * changes while the container exists.
 */
export interface RootfsSource {
  containerId: string;
  /** The container's writable layer. */
  upper: string;
  /** The image's layers, topmost first. */
  lowers: string[];
  mounts: { type: string; name?: string; source: string; destination: string; readOnly: boolean }[];
}

/** Records a container's root-filesystem changes against its image, and applies them to another container. */
export interface RootfsChanges {
  /** Throws ROOTFS_DIFF_UNSUPPORTED when the container's storage cannot be read: asked before anything is frozen. */
  prepare(containerId: string): Promise<RootfsSource>;
  /** Writes rootfs-diff.tar and deleted.files into `dir` (with `disk.since`, also removed.files). */
  record(source: RootfsSource, dir: string, disk?: DiskRecording): Promise<RootfsSummary>;
  /**
   * Applies removed.files (if any), deleted.files and rootfs-diff.tar from `dir` to a created, never started
   * container.
   */
  apply(containerId: string, dir: string): Promise<void>;
  /**
   * Writes back the filesystems of a container's root filesystem and volumes (syncfs): a prepared container's files
   * reach the disk before the migration's freeze, rather than competing with it.
   */
  flush(containerId: string): Promise<void>;
  /** Records the container's mounts; with `includeVolumes`, writes each volume's contents to volumes/<name>.tar. */
  recordMounts(
    source: RootfsSource,
    dir: string,
    includeVolumes: boolean,
    disk?: DiskRecording,
  ): Promise<MountRecord[]>;
  /**
   * Fills the container's volumes from volumes/<name>.tar (after removing volumes/<name>.removed's paths), for the
   * volumes that `fresh` names.
   */
  applyVolumes(containerId: string, dir: string, mounts: MountRecord[], fresh: Set<string>): Promise<void>;
}
