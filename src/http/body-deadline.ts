import type { Socket } from 'node:net';
import { DEADLINES } from '../defaults.js';
import type { FastifyInstance } from 'fastify';
import { ErrorCode } from '../domain/errors/index.js';
import { endWithError } from './error-handler.js';

/**
 * A request whose body stops arriving (a Content-Length over what is sent, a chunk that announces 2^64 bytes, a
 * client gone quiet) is answered 408 and closed once its socket has been silent for `ms`. The deadline holds only
 * while the body is still due: an upload of any size goes on while its bytes flow, and a long operation after the
 * body has arrived is not cut.
 */
export function installBodyDeadline(app: FastifyInstance, ms: number): void {
  if (ms <= 0) return;
  app.addHook('onRequest', async (request) => {
    const { raw } = request;
    const socket = raw.socket as Socket | undefined;
    // Injected requests (light-my-request) have no real socket, and arrive whole.
    if (raw.complete || typeof socket?.setTimeout !== 'function') return;
    // On the request, not the socket: Node's own listener destroys a socket whose request has no 'timeout'
    // listener of its own, and asks the request only while its body is incomplete.
    raw.setTimeout(ms, () => {
      if (socket.destroyed) return;
      endWithError(socket, {
        statusCode: 408,
        code: ErrorCode.REQUEST_TIMEOUT,
        message: `the request body stopped arriving: nothing came for ${ms / 1000} s`,
        hint: `send the whole body (as many bytes as Content-Length says); ${DEADLINES.requestBody.setting} sets the deadline`,
      });
      socket.destroySoon();
    });
    raw.once('end', () => socket.setTimeout(0));
  });
  app.addHook('onResponse', async (request) => {
    const socket = request.raw.socket as Socket | undefined;
    if (typeof socket?.setTimeout === 'function') socket.setTimeout(0);
  });
}
