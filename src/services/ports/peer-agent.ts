import type { Readable } from 'node:stream';
import type {
  Checkpoint,
  LazyPagesSource,
  PreparedContainer,
  RestoredContainer,
  RestoreResult,
} from '../../domain/checkpoint.js';
import type { HostInfoReport } from '../../domain/migration.js';
import type { ImageIdentity } from '../../domain/manifest.js';

/** Another cryo agent, as a migration's source sees it. */
export interface PeerAgent {
  readonly url: string;
  host(): Promise<HostInfoReport>;
  /** Whether the target has this image, under this id or (another image store) another one with its layers. */
  hasImage(image: ImageIdentity): Promise<boolean>;
  loadImage(tar: NodeJS.ReadableStream): Promise<void>;
  /** Streams an archive into the peer's import, marked as this migration's; resolves with the checkpoint it made. */
  importArchive(archive: Readable, migrationId: string): Promise<Checkpoint>;
  /**
   * With `lazyPages`, the memory pages come from that page server while the container runs (post-copy); with
   * `prepared`, the restore completes and starts that container, prepared from a disk pre-copy's seed.
   */
  restore(checkpointId: string, name: string, options?: PeerRestoreOptions): Promise<RestoreResult>;
  /** Creates and fills the container that a disk pre-copy's changes will restore into, from its seed there. */
  prepare(seedCheckpointId: string, name: string): Promise<PreparedContainer>;
  /** 'in-use': a restore of it is under way there. */
  deleteCheckpoint(checkpointId: string): Promise<CheckpointRemoval>;
  findCheckpoint(name: string): Promise<Checkpoint | undefined>;
  /** The containers the peer restored from one of its checkpoints (deleted since or not). */
  restoredContainers(checkpointId: string): Promise<RestoredContainer[]>;
}

export interface PeerRestoreOptions {
  lazyPages?: LazyPagesSource | undefined;
  prepared?: string | undefined;
}

export type CheckpointRemoval = 'deleted' | 'absent' | 'in-use';

export type PeerConnector = (url: string, token: string) => PeerAgent;
