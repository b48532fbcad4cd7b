import { CheckpointSchema, type Checkpoint } from '../../domain/checkpoint.js';
import { CheckpointNameInUseError } from '../../domain/errors/index.js';
import type { Db } from './database.js';
import type { LayerSeal } from '../../services/ports/layer-encryption.js';
import type { CheckpointCatalog, CheckpointFilter } from '../../services/ports/checkpoint-catalog.js';

interface Row {
  body: string;
}

/** The checkpoint catalog in an embedded SQLite database (WAL, synchronous=FULL). */
export class SqliteCheckpointCatalog implements CheckpointCatalog {
  constructor(private readonly db: Db) {}

  add(checkpoint: Checkpoint): void {
    try {
      this.insert(checkpoint);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new CheckpointNameInUseError(owner(checkpoint).name, checkpoint.name);
      }
      throw err;
    }
  }

  private insert(checkpoint: Checkpoint): void {
    this.db
      .prepare(
        `INSERT INTO checkpoints (id, name, container_id, container_name, created_at, body)
         VALUES (@id, @name, @containerId, @containerName, @createdAt, @body)`,
      )
      .run({
        id: checkpoint.id,
        name: checkpoint.name,
        containerId: owner(checkpoint).id,
        containerName: owner(checkpoint).name,
        createdAt: checkpoint.createdAt,
        body: JSON.stringify(checkpoint),
      });
  }

  get(id: string): Checkpoint | undefined {
    const row = this.db.prepare('SELECT body FROM checkpoints WHERE id = ?').get(id) as Row | undefined;
    return row ? parse(row) : undefined;
  }

  list(filter: CheckpointFilter = {}): Checkpoint[] {
    const where: string[] = [];
    if (filter.container !== undefined)
      where.push(
        '(container_name = @ref OR container_id = @ref OR substr(container_id, 1, length(@ref)) = @ref)',
      );
    if (filter.name !== undefined) where.push('name = @name');
    const rows = this.db
      .prepare(
        `SELECT body FROM checkpoints ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY created_at, id`,
      )
      .all({ ref: filter.container ?? null, name: filter.name ?? null }) as Row[];
    return rows.map(parse);
  }

  findByName(containerId: string, name: string): Checkpoint | undefined {
    const row = this.db
      .prepare('SELECT body FROM checkpoints WHERE container_id = ? AND name = ?')
      .get(containerId, name) as Row | undefined;
    return row ? parse(row) : undefined;
  }

  update(checkpoint: Checkpoint): void {
    this.db
      .prepare('UPDATE checkpoints SET body = @body WHERE id = @id')
      .run({ id: checkpoint.id, body: JSON.stringify(checkpoint) });
  }

  remove(id: string): boolean {
    this.db.prepare('DELETE FROM layer_seals WHERE checkpoint_id = ?').run(id);
    return this.db.prepare('DELETE FROM checkpoints WHERE id = ?').run(id).changes > 0;
  }

  seal(id: string): LayerSeal | undefined {
    const row = this.db.prepare('SELECT body FROM layer_seals WHERE checkpoint_id = ?').get(id) as
      Row | undefined;
    return row ? (JSON.parse(row.body) as LayerSeal) : undefined;
  }

  saveSeal(id: string, seal: LayerSeal | undefined): void {
    if (!seal) this.db.prepare('DELETE FROM layer_seals WHERE checkpoint_id = ?').run(id);
    else
      this.db
        .prepare('INSERT OR REPLACE INTO layer_seals (checkpoint_id, body) VALUES (?, ?)')
        .run(id, JSON.stringify(seal));
  }

  ids(): Set<string> {
    const rows = this.db.prepare('SELECT id FROM checkpoints').all() as { id: string }[];
    return new Set(rows.map((r) => r.id));
  }
}

function parse(row: Row): Checkpoint {
  return CheckpointSchema.parse(JSON.parse(row.body));
}

/** What a checkpoint belongs to: its container, or for a process checkpoint "pid:<pid>" and the command name. */
function owner(checkpoint: Checkpoint): { id: string; name: string } {
  if (checkpoint.container) return checkpoint.container;
  return { id: `pid:${checkpoint.process?.pid ?? 0}`, name: checkpoint.process?.comm ?? '' };
}
