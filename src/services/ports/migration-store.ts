import type { Migration } from '../../domain/migration.js';

/** Durable migration records, so that their history and outcome survive a restart. */
export interface MigrationStore {
  save(migration: Migration): void;
  list(): Migration[];
}
