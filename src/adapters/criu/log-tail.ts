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
  const reason =
    tailLines(text, 400)
      .filter((l) => /Error|error/.test(l))
      .at(-1) ?? err.shortMessage;
  return new CriuError(`${what} failed: ${reason}`, tailLines(text, 25), logPath, { cause: err });
}
