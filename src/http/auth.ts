import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { UnauthorizedError } from '../domain/errors/index.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without a token (health only). */
    public?: boolean;
  }
}

/** Requires `Authorization: Bearer <token>` on every route not marked public. */
export function installAuth(app: FastifyInstance, token: string): void {
  const expected = digest(token);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public === true) return;
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) throw new UnauthorizedError();
    if (!timingSafeEqual(digest(match[1]), expected))
      throw new UnauthorizedError('the bearer token is not valid');
  });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
