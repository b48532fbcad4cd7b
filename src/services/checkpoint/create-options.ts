import type { CreateCheckpointBody, MigrationMark } from '../../domain/checkpoint.js';
import type { PageServerAddress } from '../ports/container-runtime.js';
import type { DiskIndex } from '../ports/rootfs-changes.js';

export type CreateCheckpointOptions = Pick<CreateCheckpointBody, 'leaveRunning'> &
  Partial<Omit<CreateCheckpointBody, 'leaveRunning'>>;

export interface CreateCheckpointInternals {
  /**
   * Hash every entry for cryo.json now, while Docker handles the exit, rather than on the first export: a
   * checkpoint that is about to be sent (a migration) saves a full read of its images during the downtime.
   */
  hashEntries?: boolean;
  /** Called as the dump starts: the workload stops answering from here. */
  onFreeze?: () => void;
  /**
   * A migration that keeps the container frozen once the checkpoint is published (a leave-running dump): it ends
   * the freeze itself, stopping the container once the target runs it, or thawing it. Thawed on any failure here.
   */
  heldBy?: string;
  /**
   * With heldBy: dump everything but the memory pages and serve those from the frozen tasks at this address
   * (post-copy); `onPages` gets the page server's handle. The checkpoint is marked lazyPages: it holds no pages.
   */
  lazyPages?: { server: PageServerAddress; onPages: (pages: ServedPages) => void };
  /**
   * The second part of a disk pre-copy: only the files that changed since this seed (named `seed`) are recorded,
   * with the paths it sent that are gone since. The checkpoint is marked diskPreCopy changes.
   */
  diskSince?: { seed: string; index: DiskIndex };
  /** The migration this checkpoint is for: the catalog marks it, and that migration's sweeper removes it. */
  migration?: MigrationMark;
}

/** The page server of a post-copy checkpoint: it ends when its peer has taken the pages, or ends it early. */
export interface ServedPages {
  served: Promise<void>;
  abort: () => Promise<void>;
}
