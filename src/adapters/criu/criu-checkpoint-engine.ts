import { execa, ExecaError } from 'execa';
import { CriuUnavailableError } from '../../domain/errors.js';
import type { CheckpointEngine } from '../../services/checkpoint-engine.js';
import { tailLines } from './log-tail.js';

export interface CriuCheckpointEngineOptions {
  /** The criu executable (default: criu on PATH). */
  binary?: string;
  timeoutMs?: number;
}

/** CRIU driven through its command line with execa (argument arrays only, never a shell string). */
export class CriuCheckpointEngine implements CheckpointEngine {
  private readonly binary: string;
  private readonly timeoutMs: number;

  constructor(options: CriuCheckpointEngineOptions = {}) {
    this.binary = options.binary ?? 'criu';
    this.timeoutMs = options.timeoutMs ?? 30_000;
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
