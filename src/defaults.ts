/** Where cryo listens and keeps its data unless told otherwise; the command-line client looks there too. */
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 7070 };
export const DEFAULT_DATA_DIR = '/var/lib/cryo';
/** Consecutive failed operator checkpoints of a job after which triggers are refused (Flink's default is 0). */
export const DEFAULT_TOLERABLE_FAILURES = 3;
/** The bearer token's file in the data directory. */
export const TOKEN_FILE = 'token';

/** Where cryo's OCI runtime (native-scripts/cryo-runtime) looks for pending restores, unless CRYO_RUNTIME_STATE says otherwise. */
export const DEFAULT_RUNTIME_STATE_DIR = '/run/cryo-runtime';
