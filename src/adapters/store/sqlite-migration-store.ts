import { MigrationSchema, type Migration } from '../../domain/migration.js';
import type { MigrationStore } from '../../services/ports/migration-store.js';
import type { Db } from './database.js';

export class SqliteMigrationStore implements MigrationStore {
  constructor(private readonly db: Db) {}

  save(migration: Migration): void {
    this.db
      .prepare(
        'INSERT INTO migrations (id, started_at, body) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
      )
      .run(migration.id, migration.startedAt, JSON.stringify(migration));
  }

  list(): Migration[] {
    const rows = this.db.prepare('SELECT body FROM migrations ORDER BY started_at, id').all() as {
      body: string;
    }[];
    return rows.map((r) => MigrationSchema.parse(JSON.parse(r.body)));
  }
}
