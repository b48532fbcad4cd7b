/** Where cryo listens and keeps its data unless told otherwise; the command-line client looks there too. */
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 7070 };
export const DEFAULT_DATA_DIR = '/var/lib/cryo';
/** Consecutive failed operator checkpoints of a job after which triggers are refused (Flink's default is 0). */
export const DEFAULT_TOLERABLE_FAILURES = 3;
/** The bearer token's file in the data directory. */
export const TOKEN_FILE = 'token';

/** Where cryo's OCI runtime (native-scripts/cryo-runtime) looks for pending restores, unless CRYO_RUNTIME_STATE says otherwise. */
export const DEFAULT_RUNTIME_STATE_DIR = '/run/cryo-runtime';

/** Every wait's deadline: its default in ms, and the setting that changes it (named in DEADLINE_EXCEEDED's hint). */
export const DEADLINES = {
  /** A Docker request that stays silent (a stopped dockerd; docker start of a restore included). */
  docker: { ms: 300_000, setting: 'CRYO_DOCKER_TIMEOUT_MS' },
  /** A helper command: nsenter ss, ctr, sync -f, mknod, mkfifo. */
  command: { ms: 120_000, setting: 'CRYO_COMMAND_TIMEOUT_MS' },
  /** A stream to a peer (an archive, an image) that moves no byte either way; the peer fsyncs after the last. */
  peerStream: { ms: 300_000, setting: 'CRYO_PEER_TIMEOUT_MS' },
  /** A request body that stops arriving. */
  requestBody: { ms: 120_000, setting: 'CRYO_REQUEST_BODY_TIMEOUT_MS' },
  /** A migration target that stays silent while the source waits to learn whether it runs the workload. */
  migrationSettle: { ms: 30 * 60_000, setting: 'CRYO_MIGRATION_SETTLE_TIMEOUT_MS' },
  /** A registry request that stays silent (each is tried again, with backoff, after a 5xx or a broken link). */
  registry: { ms: 120_000, setting: 'CRYO_REGISTRY_TIMEOUT_MS' },
  /** A post-copy dump that does not start serving its pages while the source is frozen. */
  lazyDump: { ms: 120_000, setting: 'CRYO_LAZY_DUMP_TIMEOUT_MS' },
} as const;
