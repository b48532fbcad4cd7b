import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, ErrorCode } from '../../domain/errors/index.js';
import { criuLogFailure } from '../criu/log-tail.js';

/**
 * Podman's error for a failed dump or restore names the runc command, whose --work-path holds CRIU's log
 * (dump.log, restore.log), or the log itself ("log file: …"): the CriuError then carries its tail, as cryo's own
 * dumps do. Any other error passes as it is.
 */
export async function podmanCriuFailure(what: string, err: unknown): Promise<unknown> {
  if (!(err instanceof AppError) || err.code !== ErrorCode.PODMAN_FAILED) return err;
  const work = /--work-path (\S+)/.exec(err.message)?.[1];
  const logPath =
    /log file: (\S+)/.exec(err.message)?.[1] ??
    (work && path.join(work, /\brestore\b/.test(err.message) ? 'restore.log' : 'dump.log'));
  if (!logPath && !/criu/i.test(err.message)) return err;
  const text = logPath ? await readFile(logPath, 'utf8').catch(() => '') : '';
  return criuLogFailure(what, text || err.message, logPath || undefined, err, err.message);
}
