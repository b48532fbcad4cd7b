import { HostIntentSchema, type HostIntent, type JournaledIntent } from '../../domain/host-intent.js';
import type { HostJournal } from '../../services/ports/host-journal.js';
import type { Db } from './database.js';

/** The intent journal in the catalog (WAL, synchronous=FULL: a begun intent is on disk before the change). */
export class SqliteHostJournal implements HostJournal {
  constructor(private readonly db: Db) {}

  begin(intent: HostIntent): number {
    const result = this.db
      .prepare('INSERT INTO host_intents (created_at, body) VALUES (?, ?)')
      .run(new Date().toISOString(), JSON.stringify(intent));
    return Number(result.lastInsertRowid);
  }

  end(id: number): void {
    this.db.prepare('DELETE FROM host_intents WHERE id = ?').run(id);
  }

  pending(): JournaledIntent[] {
    const rows = this.db.prepare('SELECT id, created_at, body FROM host_intents ORDER BY id').all() as {
      id: number;
      created_at: string;
      body: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      createdAt: r.created_at,
      intent: HostIntentSchema.parse(JSON.parse(r.body)),
    }));
  }
}
