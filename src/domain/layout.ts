/**
 * Names of the entries of a checkpoint, on disk and in an exported archive. They follow the layout that
 * Podman, CRI-O and checkpointctl share, plus cryo's own manifest and Docker's container config.
 */
export const CRYO_MANIFEST = 'cryo.json';
export const CONFIG_DUMP = 'config.dump';
export const SPEC_DUMP = 'spec.dump';
export const CHECKPOINT_IMAGES_DIR = 'checkpoint';
export const ROOTFS_DIFF_TAR = 'rootfs-diff.tar';
export const DELETED_FILES = 'deleted.files';
export const STATS_DUMP = 'stats-dump';
export const NETWORK_STATUS = 'network.status';
export const VOLUMES_DIR = 'volumes';
/** A volume's contents inside VOLUMES_DIR. */
export const volumeTarName = (volume: string): string => `${volume}.tar`;
/**
 * The changes part of a disk pre-copy: the paths that the seed sent and that are gone since (JSON list), for the
 * root filesystem, and for a volume inside VOLUMES_DIR.
 */
export const REMOVED_FILES = 'removed.files';
export const volumeRemovedName = (volume: string): string => `${volume}.removed`;
export const DUMP_LOG = 'dump.log';
/** Docker's own description of the container (`docker inspect`), used to create it again. */
export const DOCKER_CONFIG = 'docker-config.json';
/** CRIU's inventory image inside CHECKPOINT_IMAGES_DIR: every dump has one. */
export const CRIU_INVENTORY = 'inventory.img';
/** Where CRIU writes the restored tree's root pid, inside the images directory. */
export const RESTORED_PIDFILE = 'restored.pid';
/** What a process-tree checkpoint records of the process it was taken of. */
export const PROCESS_RECORD = 'process.json';

/** The archive format cryo writes; an import refuses a newer one. */
export const ARCHIVE_FORMAT_VERSION = 1;

/** Operator state of an application-consistent checkpoint, after Flink: operators/chk-<n>/_metadata. */
export const OPERATORS_DIR = 'operators';
export const OPERATORS_METADATA = '_metadata';
/** State that later checkpoints may reference unchanged; hard links, so that each checkpoint keeps its own. */
export const OPERATORS_SHARED_DIR = 'shared';
export const operatorCheckpointDir = (checkpointId: number): string => `chk-${checkpointId}`;
/** The checkpoint id of an operators/chk-<n> directory name, or undefined for any other name. */
export const operatorCheckpointIdOf = (name: string): number | undefined => {
  const m = /^chk-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
};

/** In cryo's data directory: host files that containers restored from another engine's checkpoints bind-mount. */
export const FOREIGN_DIR = 'foreign';
