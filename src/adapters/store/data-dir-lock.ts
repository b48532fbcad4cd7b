import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

const LOCK_FILE = 'cryo.lock';
const HOLDER_FILE = 'cryo.pid';

/** Another cryo holds the data directory: this one must not recover, sweep or serve anything from it. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `another cryo${holderPid ? ` (pid ${holderPid})` : ''} is using the data directory ${dataDir}; ` +
        'stop it first, or give this one another CRYO_DATA_DIR',
    );
  }
}

/** The exclusive hold on a data directory; released by `release()` or, whatever ends the process, by the kernel. */
export interface DataDirLock {
  release(): void;
}

/**
 * Takes the data directory for this process, before anything in it is read or changed. The lock is SQLite's
 * exclusive lock on a file of its own (a POSIX record lock): the kernel drops it when the process dies, so a
 * kill -9 never leaves it behind, and a second process, or a second server in this one, is refused at once.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const db = new Database(path.join(dataDir, LOCK_FILE), { timeout: 0 });
  try {
    db.pragma('journal_mode = DELETE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY')
      throw new DataDirInUseError(dataDir, holder(dataDir));
    throw err;
  }
  writeFileSync(path.join(dataDir, HOLDER_FILE), `${process.pid}\n`, { mode: 0o600 });
  return {
    release: () => {
      if (db.open) db.close();
    },
  };
}

function holder(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, HOLDER_FILE), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
