import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { CriuStats } from '../../domain/criu-stats.js';
import { EngineUnsupportedError } from '../../domain/errors/index.js';
import type {
  CheckpointRequest,
  ContainerCheckpointing,
  PageServerAddress,
  RuntimeCheckpointResult,
} from '../../services/ports/container-runtime.js';
import type { DockerClient } from '../docker/docker-client.js';
import type { LibpodClient } from './libpod-client.js';
import { moveTree, PODMAN_CHECKPOINT_DIR, podmanBundle } from './podman-bundle.js';
import { podmanCriuFailure } from './podman-criu-failure.js';

/** libpod's CRIU statistics (CRIU's own names, microseconds). */
export interface LibpodCriuStatistics {
  freezing_time?: number;
  frozen_time?: number;
  memdump_time?: number;
  memwrite_time?: number;
  pages_scanned?: number;
  pages_written?: number;
  pages_restored?: number;
  forking_time?: number;
  restore_time?: number;
}

/** Podman's API stops or thaws the container as its dump returns: no freeze is held, no page server served. */
const HELD_FREEZE = 'a post-copy migration, or a source held frozen';
const HELD_FREEZE_HINT = 'migrate with strategy stop-and-copy: the source stops with its dump';

/**
 * Dumps through Podman's own checkpoint API, so that Podman's view (exited, or running on) stays its own; CRIU's
 * images are then moved from the container's bundle into cryo's staging directory.
 */
export class PodmanCheckpointing implements ContainerCheckpointing {
  constructor(
    private readonly client: DockerClient,
    private readonly libpod: LibpodClient,
  ) {}

  async checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult> {
    if (request.lazyPages || request.heldBy !== undefined)
      throw new EngineUnsupportedError(HELD_FREEZE, HELD_FREEZE_HINT);
    if (request.criu.externalUnixSockets || request.criu.ghostLimitBytes !== undefined)
      throw new EngineUnsupportedError(
        'externalUnixSockets and ghostLimitBytes (Podman passes neither to CRIU)',
        'leave them out',
      );
    const bundle = await podmanBundle(this.libpod, containerId);
    const images = path.join(bundle.StaticDir, PODMAN_CHECKPOINT_DIR);
    // What an earlier dump left would mix with this one's images.
    await rm(images, { recursive: true, force: true });
    let report: { criu_statistics?: LibpodCriuStatistics | null };
    try {
      report = await this.libpod.post(`/containers/${encodeURIComponent(containerId)}/checkpoint`, {
        leaveRunning: !request.exit,
        tcpEstablished: request.criu.tcpEstablished,
        fileLocks: request.criu.fileLocks,
        printStats: true,
      });
    } catch (err) {
      await rm(images, { recursive: true, force: true });
      throw await podmanCriuFailure('the dump', err);
    }
    await moveTree(images, path.join(request.parentDir, request.checkpointId));
    return {
      stats: criuStats(report.criu_statistics ?? {}),
      path: 'podman',
      settled: Promise.resolve(),
      thaw: async () => undefined,
    };
  }

  async ensureNotFrozen(containerId: string): Promise<void> {
    const info = await this.client.callOr((d) => d.getContainer(containerId).inspect(), [404], undefined);
    if (info?.State.Paused) await this.client.call((d) => d.getContainer(containerId).unpause());
  }

  thawFrozen(containerId: string): Promise<void> {
    return this.ensureNotFrozen(containerId);
  }

  async canHoldFrozen(): Promise<boolean> {
    return false;
  }

  async stopFrozen(): Promise<void> {
    throw new EngineUnsupportedError(HELD_FREEZE, HELD_FREEZE_HINT);
  }

  async hangUpPageServer(_address: PageServerAddress): Promise<void> {
    // No page server is ever started for a Podman container (no lazy dumps).
  }
}

/** libpod's statistics as cryo's (milliseconds). */
export function criuStats(s: LibpodCriuStatistics): CriuStats {
  const ms = (us: number | undefined) => (us === undefined ? undefined : us / 1000);
  const stats: CriuStats = {
    freezingMs: ms(s.freezing_time),
    frozenMs: ms(s.frozen_time),
    memdumpMs: ms(s.memdump_time),
    memwriteMs: ms(s.memwrite_time),
    pagesScanned: s.pages_scanned,
    pagesWritten: s.pages_written,
    pagesRestored: s.pages_restored,
    forkingMs: ms(s.forking_time),
    restoreMs: ms(s.restore_time),
  };
  return Object.fromEntries(Object.entries(stats).filter(([, v]) => v !== undefined)) as CriuStats;
}
