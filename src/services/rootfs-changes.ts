import type { MountRecord } from '../domain/manifest.js';

export interface RootfsSummary {
  changed: number;
  deleted: number;
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
  /** Writes rootfs-diff.tar and deleted.files into `dir`. */
  record(source: RootfsSource, dir: string): Promise<RootfsSummary>;
  /** Applies rootfs-diff.tar and deleted.files from `dir` to a created, never started container. */
  apply(containerId: string, dir: string): Promise<void>;
  /** Records the container's mounts; with `includeVolumes`, writes each volume's contents to volumes/<name>.tar. */
  recordMounts(source: RootfsSource, dir: string, includeVolumes: boolean): Promise<MountRecord[]>;
  /** Fills the container's volumes from volumes/<name>.tar, for the volumes that `fresh` names. */
  applyVolumes(containerId: string, dir: string, mounts: MountRecord[], fresh: Set<string>): Promise<void>;
}
