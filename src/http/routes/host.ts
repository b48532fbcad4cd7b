import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBodySchema } from '../../domain/error-body.js';
import { ImageRefSchema } from '../../domain/names.js';
import { HostInfoSchema } from '../../domain/migration.js';
import type { HostService } from '../../services/host/host-service.js';
import { IMAGE_ARCHIVE_TYPES } from '../media-types.js';
import { consumeStream } from '../stream-body.js';

/** What a peer agent asks before it migrates a container here. */
export const hostRoutes: FastifyPluginAsyncZod<{ host: HostService }> = async (app, { host }) => {
  app.get(
    '/v1/host',
    {
      schema: {
        summary: 'This host: kernel, architecture, CRIU and Docker versions, free space',
        response: { 200: HostInfoSchema, 401: ErrorBodySchema },
      },
    },
    async (request) => ({ ...(await host.report()), peerAddress: request.ip }),
  );
  app.get(
    '/v1/images/present',
    {
      schema: {
        summary:
          'Whether an image is present: by id, or (another image store names it otherwise) by reference or any image with the same layers',
        querystring: z.strictObject({
          id: ImageRefSchema,
          ref: ImageRefSchema.optional(),
          layers: z
            .string()
            .max(128 * 72)
            .regex(/^sha256:[0-9a-f]{64}(,sha256:[0-9a-f]{64})*$/, 'comma-separated sha256 diff ids')
            .optional()
            .describe("the image's layer diff ids, comma-separated"),
        }),
        response: { 200: z.object({ present: z.boolean() }), 400: ErrorBodySchema, 401: ErrorBodySchema },
      },
    },
    async (request) => {
      const { id, ref, layers } = request.query;
      return {
        present: await host.imagePresent({
          id,
          ref: ref ?? id,
          ...(layers ? { layers: layers.split(',') } : {}),
        }),
      };
    },
  );
  app.post(
    '/v1/images',
    {
      bodyLimit: Number.MAX_SAFE_INTEGER,
      config: { streamTypes: IMAGE_ARCHIVE_TYPES },
      schema: {
        summary: 'Load an image from a `docker save` tar (application/x-tar or application/octet-stream)',
        response: {
          201: z.object({ loaded: z.literal(true) }),
          400: ErrorBodySchema,
          401: ErrorBodySchema,
          415: ErrorBodySchema,
        },
      },
    },
    async (request, reply) => {
      await consumeStream(request, (tar) => host.loadImage(tar));
      return reply.status(201).send({ loaded: true });
    },
  );
};
