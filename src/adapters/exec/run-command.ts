import { execa, type Options, type Result } from 'execa';
import { DEADLINES } from '../../defaults.js';
import { DeadlineExceededError } from '../../domain/errors/index.js';

/** The deadline of a helper command (nsenter ss, ctr, sync -f, mknod, mkfifo), and the setting that changes it. */
export interface CommandDeadline {
  ms: number;
  setting: string;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
}

/**
 * Runs `file` with `args` (an argument array, never a shell string) and ends it, SIGKILL after SIGTERM, once its
 * deadline passes: a stopped or hung command fails with DEADLINE_EXCEEDED, naming it, instead of waiting forever.
 */
export async function runCommand(
  file: string,
  args: readonly string[],
  deadline: CommandDeadline,
  options: Pick<Options, 'reject' | 'env' | 'all'> = {},
): Promise<CommandResult> {
  const exceeded = (cause: unknown) =>
    new DeadlineExceededError(`${file} ${args.join(' ')}`.slice(0, 200), deadline.ms, deadline.setting, {
      cause,
    });
  let result: Result;
  try {
    result = (await execa(file, args, {
      ...options,
      timeout: deadline.ms,
      forceKillAfterDelay: 2_000,
    })) as Result;
  } catch (err) {
    if ((err as { timedOut?: boolean }).timedOut) throw exceeded(err);
    throw err;
  }
  // With reject: false, a timeout is a result, not an error.
  if (result.timedOut) throw exceeded(result);
  return {
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    exitCode: result.exitCode,
  };
}

export const DEFAULT_COMMAND_DEADLINE: CommandDeadline = DEADLINES.command;
