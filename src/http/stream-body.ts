import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnsupportedMediaTypeError } from '../domain/errors/index.js';
import { drainRefusedUpload } from './drain-refused-upload.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes its body as a raw stream, of only these media types. */
    streamTypes?: readonly string[];
  }
}

/**
 * Refuses, before the body is read, a request whose content-type a streaming route does not take. A parsed body
 * must never reach such a route: dockerode reads a string as a host file path and crashes on an object.
 */
export function installStreamBodyGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const accepted = request.routeOptions.config.streamTypes;
    if (!accepted) return;
    const type = mediaType(request.headers['content-type']);
    if (!accepted.includes(type)) {
      drainRefusedUpload(request.raw);
      throw new UnsupportedMediaTypeError(type, accepted);
    }
  });
}

/**
 * Hands a streaming route's body to `use`. Should `use` refuse it part-way, the rest of the upload is read and
 * dropped for a moment, so that the client gets the refusal rather than a broken pipe.
 */
export async function consumeStream<T>(
  request: FastifyRequest,
  use: (body: Readable) => Promise<T>,
): Promise<T> {
  const body = streamBody(request);
  try {
    return await use(body);
  } catch (err) {
    drainRefusedUpload(request.raw);
    throw err;
  }
}

/** The body of a streaming route; anything else is refused, whatever a content-type parser made of it. */
function streamBody(request: FastifyRequest): Readable {
  const accepted = request.routeOptions.config.streamTypes ?? [];
  if (!(request.body instanceof Readable))
    throw new UnsupportedMediaTypeError(mediaType(request.headers['content-type']), accepted);
  return request.body;
}

/** `Application/X-Tar; charset=x` -> `application/x-tar`. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}
