import type { CriuOptions } from '../../domain/process.js';
import type { CriuStats } from '../../domain/criu-stats.js';
import type { PostCopySupport } from '../../domain/migration.js';

export interface DumpResult {
  stats: CriuStats;
  /** The pids of the dumped tree's tasks and threads: a restore needs them free. */
  pids: number[];
}

export interface EngineRestoreResult {
  /** The restored tree's root pid. */
  pid: number;
  stats: CriuStats;
}

/** The checkpoint/restore tool (CRIU) as the services see it. */
export interface CheckpointEngine {
  /** The tool's version, e.g. "4.2.1"; throws CriuUnavailableError when it is missing. */
  version(): Promise<string>;
  /** Runs the tool's own host check; throws CriuUnavailableError when it fails. */
  check(): Promise<void>;
  /** Whether this host can dump and restore with lazy pages (post-copy), and why not. */
  postCopySupport(): Promise<PostCopySupport>;
  /** Dumps the process tree rooted at `pid` into `dir`; throws CriuError with the log tail on failure. */
  dump(pid: number, dir: string, options: CriuOptions & { leaveRunning: boolean }): Promise<DumpResult>;
  /** Restores the tree in `dir`, detached; throws CriuError with the log tail on failure. */
  restore(dir: string, options: CriuOptions): Promise<EngineRestoreResult>;
}
