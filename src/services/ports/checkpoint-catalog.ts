import type { Checkpoint } from '../../domain/checkpoint.js';
import type { LayerSeal } from './layer-encryption.js';

export interface CheckpointFilter {
  /** Matches a container id, id prefix or name. */
  container?: string;
  /** The checkpoint's own name. */
  name?: string;
}

/** The durable list of complete checkpoints. */
export interface CheckpointCatalog {
  add(checkpoint: Checkpoint): void;
  get(id: string): Checkpoint | undefined;
  list(filter?: CheckpointFilter): Checkpoint[];
  /** Replaces the record of a checkpoint that is there (its chain, after a rebase). */
  update(checkpoint: Checkpoint): void;
  findByName(containerId: string, name: string): Checkpoint | undefined;
  remove(id: string): boolean;
  /** How a level's layer was last encrypted for a push (its key included: kept out of the record). */
  seal(id: string): LayerSeal | undefined;
  saveSeal(id: string, seal: LayerSeal | undefined): void;
  ids(): Set<string>;
}
