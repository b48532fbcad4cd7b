import pino from 'pino';

/** cryo's one logger: the HTTP server's and every service's, so that a background failure shows beside requests. */
export function createLogger(level: string): pino.Logger {
  return pino({ level });
}
