import Database from 'better-sqlite3';

export type Db = Database.Database;

/** A migration id as newId makes it, as a GLOB: 21 lowercase letters and digits. */
const ID_GLOB = '[0-9a-z]'.repeat(21);

// One list of migrations for the whole catalog; user_version counts how many have run.
const MIGRATIONS = [
  `CREATE TABLE checkpoints (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     container_id TEXT NOT NULL,
     container_name TEXT NOT NULL,
     created_at TEXT NOT NULL,
     body TEXT NOT NULL,
     UNIQUE (container_id, name)
   )`,
  `CREATE INDEX checkpoints_container_name ON checkpoints (container_name)`,
  `CREATE TABLE schedules (
     id TEXT PRIMARY KEY,
     body TEXT NOT NULL
   )`,
  `CREATE TABLE schedule_runs (
     id TEXT PRIMARY KEY,
     schedule_id TEXT NOT NULL,
     started_at TEXT NOT NULL,
     checkpoint_id TEXT,
     body TEXT NOT NULL
   )`,
  `CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, started_at)`,
  `CREATE TABLE migrations (
     id TEXT PRIMARY KEY,
     started_at TEXT NOT NULL,
     body TEXT NOT NULL
   )`,
  `CREATE TABLE host_intents (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     created_at TEXT NOT NULL,
     body TEXT NOT NULL
   )`,
  // Migrations' checkpoints were once known by their name alone (migration-<id>, migration-<id>-seed, the id as
  // newId makes it); those records get the catalog's mark, and from here on only the mark makes one sweepable.
  `UPDATE checkpoints
     SET body = json_set(body, '$.migration', json_object('id', substr(name, 11, 21)))
     WHERE json_extract(body, '$.migration') IS NULL
       AND (name GLOB 'migration-${ID_GLOB}' OR name GLOB 'migration-${ID_GLOB}-seed')`,
  // The key and nonce each level's pushed layer was encrypted with: never part of a checkpoint's API record.
  `CREATE TABLE layer_seals (
     checkpoint_id TEXT PRIMARY KEY,
     body TEXT NOT NULL
   )`,
  // Which repositories of a registry hold a blob: a push to another one mounts it rather than send it.
  `CREATE TABLE blob_locations (
     registry TEXT NOT NULL,
     repository TEXT NOT NULL,
     digest TEXT NOT NULL,
     seen_at INTEGER NOT NULL,
     PRIMARY KEY (registry, repository, digest)
   )`,
];

/** Opens the catalog database (WAL, synchronous=FULL) and brings its schema up to date. */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v] as string);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
  return db;
}
