/** Names of the entries inside a stored checkpoint; they follow Podman's and CRI-O's archive layout. */
export const CHECKPOINT_IMAGES_DIR = 'checkpoint';
export const CONFIG_DUMP = 'config.dump';
export const STATS_DUMP = 'stats-dump';
export const DUMP_LOG = 'dump.log';
