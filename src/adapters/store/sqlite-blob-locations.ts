import type { Db } from './database.js';
import type { BlobLocations } from '../../services/ports/checkpoint-registry.js';

/** The repositories that pushes and pulls saw holding a blob, in the catalog database. */
export class SqliteBlobLocations implements BlobLocations {
  constructor(private readonly db: Db) {}

  repositories(registry: string, digest: string): string[] {
    const rows = this.db
      .prepare(
        'SELECT repository FROM blob_locations WHERE registry = ? AND digest = ? ORDER BY seen_at DESC',
      )
      .all(registry, digest) as { repository: string }[];
    return rows.map((r) => r.repository);
  }

  add(registry: string, repository: string, digests: string[]): void {
    const insert = this.db.prepare(
      `INSERT INTO blob_locations (registry, repository, digest, seen_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (registry, repository, digest) DO UPDATE SET seen_at = excluded.seen_at`,
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const digest of digests) insert.run(registry, repository, digest, now);
    })();
  }
}
