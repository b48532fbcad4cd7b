import { readFile } from 'node:fs/promises';
import type { ExecaError } from 'execa';
import { CriuError } from '../../domain/errors/index.js';

/** The last `count` non-empty lines of a log. */
export function tailLines(log: string, count: number): string[] {
  return log
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-count);
}

/**
 * The CriuError for a failed CRIU run, direct or through runc: the last error line of CRIU's log as the reason,
 * and the log's tail (the command's own output where CRIU left no log).
 */
export async function criuFailure(what: string, logPath: string, err: ExecaError): Promise<CriuError> {
  const text = (await readFile(logPath, 'utf8').catch(() => '')) || String(err.all ?? '');
  return criuLogFailure(what, text, logPath, err, err.shortMessage);
}

// CRIU logs these as errors and goes on: raising RLIMIT_NOFILE needs CAP_SYS_RESOURCE, which some roots lack.
const BENIGN = /rlimit: Can't setup/;

/**
 * The CriuError for CRIU's log `text`. The reason is its first `Error (file:line)` line: what follows it is
 * mostly CRIU cleaning up (a restore that failed on a socket ends with a cgroupd error, say).
 */
export function criuLogFailure(
  what: string,
  text: string,
  logPath: string | undefined,
  cause: unknown,
  fallback = 'see the log tail',
): CriuError {
  const lines = tailLines(text, 400);
  const reason =
    lines.find((l) => /Error \(/.test(l) && !BENIGN.test(l)) ??
    lines.filter((l) => /Error|error/.test(l)).at(-1) ??
    fallback;
  return new CriuError(`${what} failed: ${reason}`, tailLines(text, 25), logPath, { cause });
}
