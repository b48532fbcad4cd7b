import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  CheckpointListSchema,
  CheckpointSchema,
  CreateCheckpointBodySchema,
  ListCheckpointsQuerySchema,
  PrepareBodySchema,
  PreparedContainerSchema,
  RestoreBodySchema,
  RestoredContainerListSchema,
  RestoredContainersQuerySchema,
  RestoreResultSchema,
} from '../../domain/checkpoint.js';
import { ErrorBodySchema } from '../../domain/error-body.js';
import { peerErrorResponses } from './error-responses.js';
import { OperatorsViewSchema } from '../../domain/sidecar/metadata.js';
import { CheckpointIdSchema, ContainerRefSchema } from '../../domain/names.js';
import type { CheckpointService } from '../../services/checkpoint/checkpoint-service.js';
import { disconnectSignal } from '../disconnect-signal.js';

const errors = peerErrorResponses;

export const checkpointRoutes: FastifyPluginAsyncZod<{ checkpoints: CheckpointService }> = async (
  app,
  { checkpoints },
) => {
  app.post(
    '/v1/containers/:ref/checkpoints',
    {
      schema: {
        summary: 'Checkpoint a running container',
        params: z.object({ ref: ContainerRefSchema }),
        body: CreateCheckpointBodySchema,
        response: { 201: CheckpointSchema, ...errors },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await checkpoints.create(request.params.ref, request.body)),
  );

  app.get(
    '/v1/containers/:ref/operators',
    {
      schema: {
        summary: "The stream job registered by the container's sidecar, and its latest operator checkpoint",
        params: z.object({ ref: ContainerRefSchema }),
        response: { 200: OperatorsViewSchema, ...errors },
      },
    },
    async (request) => checkpoints.operators(request.params.ref),
  );

  app.get(
    '/v1/checkpoints',
    {
      schema: {
        summary: 'List complete checkpoints',
        querystring: ListCheckpointsQuerySchema,
        response: { 200: CheckpointListSchema, 400: ErrorBodySchema, 401: ErrorBodySchema },
      },
    },
    async (request) => ({ checkpoints: checkpoints.list(request.query) }),
  );

  app.get(
    '/v1/containers',
    {
      schema: {
        summary: 'Containers that restores created, from one checkpoint (restoredFrom) or any',
        querystring: RestoredContainersQuerySchema,
        response: { 200: RestoredContainerListSchema, 400: ErrorBodySchema, 401: ErrorBodySchema },
      },
    },
    async (request) => ({ containers: await checkpoints.restoredContainers(request.query.restoredFrom) }),
  );

  app.get(
    '/v1/checkpoints/:id',
    {
      schema: {
        summary: 'One checkpoint',
        params: z.object({ id: CheckpointIdSchema }),
        response: { 200: CheckpointSchema, ...errors },
      },
    },
    async (request) => checkpoints.get(request.params.id),
  );

  app.delete(
    '/v1/checkpoints/:id',
    {
      schema: {
        summary: 'Delete a checkpoint and its files',
        params: z.object({ id: CheckpointIdSchema }),
        response: { 204: z.null().describe('deleted'), ...errors },
      },
    },
    async (request, reply) => {
      await checkpoints.remove(request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/v1/checkpoints/:id/prepare',
    {
      schema: {
        summary:
          "From a migration's disk pre-copy seed: create the container its changes checkpoint will restore into, with the seed's files",
        params: z.object({ id: CheckpointIdSchema }),
        body: PrepareBodySchema,
        response: { 201: PreparedContainerSchema, ...errors },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await checkpoints.prepare(request.params.id, request.body)),
  );

  app.post(
    '/v1/checkpoints/:id/restore',
    {
      schema: {
        summary: 'Restore a checkpoint into its stopped original container, or into a new container (name)',
        params: z.object({ id: CheckpointIdSchema }),
        body: RestoreBodySchema,
        response: { 201: RestoreResultSchema, ...errors },
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .send(await checkpoints.restore(request.params.id, request.body, disconnectSignal(reply.raw))),
  );
};
