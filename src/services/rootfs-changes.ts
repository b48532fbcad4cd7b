import type { MountRecord } from '../domain/manifest.js';

export interface RootfsSummary {
  changed: number;
  deleted: number;
}

/** Records a container's root-filesystem changes against its image, and applies them to another container. */
export interface RootfsChanges {
  /** Throws ROOTFS_DIFF_UNSUPPORTED when the container's storage cannot be read: asked before anything is frozen. */
  requireSupported(containerId: string): Promise<void>;
  /** Writes rootfs-diff.tar and deleted.files into `dir`. */
  record(containerId: string, dir: string): Promise<RootfsSummary>;
  /** Applies rootfs-diff.tar and deleted.files from `dir` to a created, never started container. */
  apply(containerId: string, dir: string): Promise<void>;
  /** Records the container's mounts; with `includeVolumes`, writes each volume's contents to volumes/<name>.tar. */
  recordMounts(containerId: string, dir: string, includeVolumes: boolean): Promise<MountRecord[]>;
  /** Fills the container's volumes from volumes/<name>.tar, for the volumes that `fresh` names. */
  applyVolumes(containerId: string, dir: string, mounts: MountRecord[], fresh: Set<string>): Promise<void>;
}
