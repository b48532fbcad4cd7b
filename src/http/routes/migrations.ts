import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBodySchema } from '../../domain/error-body.js';
import { peerErrorResponses } from './error-responses.js';
import {
  CreateMigrationBodySchema,
  MigrationListSchema,
  MigrationSchema,
  type Migration,
} from '../../domain/migration.js';
import { ContainerRefSchema } from '../../domain/names.js';
import type { MigrationService } from '../../services/migration/migration-service.js';

const errors = peerErrorResponses;
const params = z.object({ id: z.string().regex(/^[0-9a-z]{8,64}$/) });

export const migrationRoutes: FastifyPluginAsyncZod<{ migrations: MigrationService }> = async (
  app,
  { migrations },
) => {
  app.post(
    '/v1/containers/:ref/migrations',
    {
      schema: {
        summary: 'Move a running container to another cryo agent (rolls back on failure)',
        params: z.object({ ref: ContainerRefSchema }),
        body: CreateMigrationBodySchema,
        response: { 202: MigrationSchema, ...errors, 507: ErrorBodySchema },
      },
    },
    async (request, reply) =>
      reply.status(202).send(await migrations.start(request.params.ref, request.body)),
  );
  app.get(
    '/v1/migrations',
    {
      schema: {
        summary: 'Migrations since cryo started',
        response: { 200: MigrationListSchema, 401: ErrorBodySchema },
      },
    },
    async () => ({ migrations: migrations.list() }),
  );
  app.get(
    '/v1/migrations/:id',
    {
      schema: {
        summary: 'One migration, with its phases',
        params,
        response: { 200: MigrationSchema, ...errors },
      },
    },
    async (request) => migrations.get(request.params.id),
  );
  app.get(
    '/v1/migrations/:id/events',
    { schema: { summary: "A migration's progress as server-sent events (event: update, then end)", params } },
    async (request, reply) => {
      const current = migrations.get(request.params.id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      const send = (m: Migration) => {
        res.write(`event: update\ndata: ${JSON.stringify(m)}\n\n`);
        if (m.status !== 'running') {
          res.write(`event: end\ndata: ${JSON.stringify({ status: m.status })}\n\n`);
          res.end();
        }
      };
      const unsubscribe = migrations.subscribe(current.id, send);
      res.on('close', unsubscribe);
      send(current);
    },
  );
};
