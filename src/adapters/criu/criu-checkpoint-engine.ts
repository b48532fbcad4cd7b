import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, ExecaError } from 'execa';
import { CriuUnavailableError } from '../../domain/errors/index.js';
import type { CriuOptions } from '../../domain/process.js';
import type {
  CheckpointEngine,
  DumpResult,
  EngineRestoreResult,
} from '../../services/ports/checkpoint-engine.js';
import { criuFailure, tailLines } from './log-tail.js';
import { PSTREE_IMAGE, readPstreePids } from './pstree-image.js';
import { readStatsImage } from './stats-image.js';
import { postCopySupport } from './post-copy-support.js';
import type { PostCopySupport } from '../../domain/migration.js';
import { RESTORED_PIDFILE } from '../../domain/layout.js';

const DUMP_LOG = 'dump.log';
const RESTORE_LOG = 'restore.log';

export interface CriuCheckpointEngineOptions {
  /** The criu executable (default: criu on PATH). */
  binary?: string;
  timeoutMs?: number;
  /** CRYO_POST_COPY=off: this host refuses post-copy migrations, as if CRIU could not do them. */
  postCopyOff?: boolean;
}

/** CRIU driven through its command line with execa (argument arrays only, never a shell string). */
export class CriuCheckpointEngine implements CheckpointEngine {
  private readonly binary: string;
  private readonly timeoutMs: number;

  private postCopy: Promise<PostCopySupport> | undefined;

  constructor(private readonly options: CriuCheckpointEngineOptions = {}) {
    this.binary = options.binary ?? 'criu';
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  postCopySupport(): Promise<PostCopySupport> {
    // Asked once: the kernel and the sysctl do not change under a running agent often enough to ask each time.
    this.postCopy ??= postCopySupport(this.binary, this.options.postCopyOff === true);
    return this.postCopy;
  }

  async version(): Promise<string> {
    const out = await this.run(['--version']);
    const match = /Version:\s*(\S+)/.exec(out);
    if (!match?.[1])
      throw new CriuUnavailableError(`could not read a version from "${this.binary} --version"`);
    return match[1];
  }

  async check(): Promise<void> {
    await this.run(['check']);
  }

  async dump(
    pid: number,
    dir: string,
    options: CriuOptions & { leaveRunning: boolean },
  ): Promise<DumpResult> {
    const args = [
      'dump',
      '--tree',
      String(pid),
      '--images-dir',
      dir,
      '--log-file',
      DUMP_LOG,
      '-v4',
      ...flags(options),
    ];
    if (options.leaveRunning) args.push('--leave-running');
    await this.criu(args, dir, DUMP_LOG, 'dump');
    return {
      stats: await readStatsImage(path.join(dir, 'stats-dump')),
      pids: await readPstreePids(path.join(dir, PSTREE_IMAGE)),
    };
  }

  async restore(dir: string, options: CriuOptions): Promise<EngineRestoreResult> {
    const args = [
      'restore',
      '--images-dir',
      dir,
      '--log-file',
      RESTORE_LOG,
      '-v4',
      '--restore-detached',
      '--pidfile',
      RESTORED_PIDFILE,
      ...flags(options),
    ];
    await this.criu(args, dir, RESTORE_LOG, 'restore');
    const pid = Number((await readFile(path.join(dir, RESTORED_PIDFILE), 'utf8')).trim());
    return { pid, stats: await readStatsImage(path.join(dir, 'stats-restore')) };
  }

  /** Runs criu; a failure becomes a CriuError that wraps the ExecaError and carries the log's last lines. */
  private async criu(args: string[], dir: string, log: string, action: string): Promise<void> {
    try {
      await execa(this.binary, args, { all: true, timeout: 10 * 60_000 });
    } catch (err) {
      if (!(err instanceof ExecaError)) throw err;
      throw await criuFailure(`criu ${action}`, path.join(dir, log), err);
    }
  }

  private async run(args: string[]): Promise<string> {
    try {
      const result = await execa(this.binary, args, { timeout: this.timeoutMs, all: true });
      return result.all ?? '';
    } catch (err) {
      if (err instanceof ExecaError) {
        const tail = tailLines(String(err.all ?? err.stderr ?? ''), 10).join('\n');
        const reason = err.code === 'ENOENT' ? 'is not installed' : `failed (${err.shortMessage})`;
        throw new CriuUnavailableError(
          `"${this.binary} ${args.join(' ')}" ${reason}${tail ? `: ${tail}` : ''}`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
  }
}

function flags(o: CriuOptions): string[] {
  return [
    ...(o.tcpEstablished ? ['--tcp-established'] : []),
    ...(o.fileLocks ? ['--file-locks'] : []),
    ...(o.shellJob ? ['--shell-job'] : []),
    ...(o.externalUnixSockets ? ['--ext-unix-sk'] : []),
  ];
}
