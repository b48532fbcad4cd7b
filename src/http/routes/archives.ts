import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { CheckpointSchema, ExportQuerySchema, ImportQuerySchema } from '../../domain/checkpoint.js';
import { ErrorBodySchema } from '../../domain/error-body.js';
import { CheckpointIdSchema } from '../../domain/names.js';
import type { ArchiveService } from '../../services/archive/archive-service.js';
import { CHECKPOINT_ARCHIVE_TYPES } from '../media-types.js';
import { consumeStream } from '../stream-body.js';

export const archiveRoutes: FastifyPluginAsyncZod<{ archives: ArchiveService }> = async (
  app,
  { archives },
) => {
  app.get(
    '/v1/checkpoints/:id/archive',
    {
      schema: {
        summary:
          "Export a checkpoint as one tar (Podman/CRI-O layout, cryo.json first); format=podman for Podman's restore --import",
        params: z.object({ id: CheckpointIdSchema }),
        querystring: ExportQuerySchema,
        response: {
          200: z.unknown().describe('the archive: tar, tar.gz or tar.zst'),
          400: ErrorBodySchema,
          401: ErrorBodySchema,
          404: ErrorBodySchema,
          409: ErrorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const { compress, format } = request.query;
      const archive = await archives.export(request.params.id, compress, { format });
      if (archive.sizeBytes !== undefined) reply.header('content-length', archive.sizeBytes);
      return reply
        .header('content-type', archive.contentType)
        .header('content-disposition', `attachment; filename="${archive.filename}"`)
        .send(archive.stream);
    },
  );

  app.post(
    '/v1/checkpoints',
    {
      bodyLimit: Number.MAX_SAFE_INTEGER,
      config: { streamTypes: CHECKPOINT_ARCHIVE_TYPES },
      schema: {
        summary: 'Import a checkpoint archive (application/x-tar; gzip and zstd are detected)',
        querystring: ImportQuerySchema,
        response: {
          201: CheckpointSchema,
          400: ErrorBodySchema,
          401: ErrorBodySchema,
          409: ErrorBodySchema,
          413: ErrorBodySchema,
          415: ErrorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const { migration } = request.query;
      const checkpoint = await consumeStream(request, (body) =>
        archives.import(body, migration ? { id: migration } : undefined),
      );
      return reply.status(201).send(checkpoint);
    },
  );
};
