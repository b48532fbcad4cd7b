import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { CheckpointSchema } from '../../domain/checkpoint.js';
import { CheckpointIdSchema } from '../../domain/names.js';
import { PullBodySchema, PushBodySchema, PushResultSchema } from '../../domain/registry.js';
import type { RegistryService } from '../../services/registry/registry-service.js';
import { registryErrorResponses } from './error-responses.js';

export const registryRoutes: FastifyPluginAsyncZod<{ registry: RegistryService }> = async (
  app,
  { registry },
) => {
  app.post(
    '/v1/checkpoints/:id/push',
    {
      schema: {
        summary:
          'Push a checkpoint to an OCI registry (an image-spec 1.1 artifact: cryo.json and the archive)',
        params: z.object({ id: CheckpointIdSchema }),
        body: PushBodySchema,
        response: { 200: PushResultSchema, ...registryErrorResponses },
      },
    },
    async (request) => registry.push(request.params.id, request.body.reference, request.body.format),
  );
  app.post(
    '/v1/checkpoints/pull',
    {
      schema: {
        summary: 'Pull a checkpoint from an OCI registry into the catalog (200 when it was here already)',
        body: PullBodySchema,
        response: { 200: CheckpointSchema, 201: CheckpointSchema, ...registryErrorResponses },
      },
    },
    async (request, reply) => {
      const { checkpoint, pulled } = await registry.pull(request.body.reference);
      return reply.status(pulled ? 201 : 200).send(checkpoint);
    },
  );
};
