import { readFile } from 'node:fs/promises';
import { AppError, CriuError, DockerError } from '../../domain/errors/index.js';
import { tailLines } from '../criu/log-tail.js';
import { apiMessage, firstLine, translateDockerError } from './docker-client.js';

const CRIU_LOG_PATH = /(\/[^\s:"]+\.log)/;

/** A CriuError with CRIU's log tail when dockerd's message names a CRIU log, otherwise a Docker error. */
export async function checkpointError(err: unknown, action: 'checkpoint' | 'restore'): Promise<AppError> {
  const translated = translateDockerError(err);
  if (!(translated instanceof DockerError)) return translated;
  const message = apiMessage(err);
  if (!/criu|runc|checkpoint/i.test(message)) return translated;
  const logPath = CRIU_LOG_PATH.exec(message)?.[1];
  const log = logPath ? await readFile(logPath, 'utf8').catch(() => '') : '';
  return new CriuError(`CRIU ${action} failed: ${firstLine(message)}`, tailLines(log, 25), logPath, {
    cause: err,
  });
}
