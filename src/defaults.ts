/** Where cryo listens and keeps its data unless told otherwise; the command-line client looks there too. */
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 7070 };
export const DEFAULT_DATA_DIR = '/var/lib/cryo';
/** The bearer token's file in the data directory. */
export const TOKEN_FILE = 'token';
