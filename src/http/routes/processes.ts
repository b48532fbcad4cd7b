import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { CheckpointSchema } from '../../domain/checkpoint.js';
import { errorResponses } from './error-responses.js';
import { ContainerRefSchema, NameSchema } from '../../domain/names.js';
import { CriuOptionsSchema, PidSchema, PreflightSchema, ProcessReportSchema } from '../../domain/process.js';
import type { ProcessService } from '../../services/process/process-service.js';

const errors = errorResponses;
const pidParams = z.object({ pid: PidSchema });
const refParams = z.object({ ref: ContainerRefSchema });
/** A query flag: "true" or "false", false when absent. */
const flag = z
  .enum(['true', 'false'])
  .default('false')
  .transform((v) => v === 'true');
const ContainerPreflightQuerySchema = z.strictObject({
  tcpEstablished: flag,
  fileLocks: flag,
  externalUnixSockets: flag,
});
const PreflightQuerySchema = ContainerPreflightQuerySchema.extend({ shellJob: flag });
const ProcessCheckpointBodySchema = z.preprocess(
  (v) => v ?? {},
  CriuOptionsSchema.extend({
    name: NameSchema.optional(),
    leaveRunning: z.boolean().default(false),
    force: z.boolean().default(false).describe('skip the pre-flight check'),
  }),
);

export const processRoutes: FastifyPluginAsyncZod<{ processes: ProcessService }> = async (
  app,
  { processes },
) => {
  app.get(
    '/v1/processes/:pid',
    {
      schema: {
        summary: 'What a process tree holds, from /proc',
        params: pidParams,
        response: { 200: ProcessReportSchema, ...errors },
      },
    },
    async (request) => processes.inspect(request.params.pid),
  );
  app.get(
    '/v1/processes/:pid/preflight',
    {
      schema: {
        summary: 'Whether CRIU could dump this tree, and why not',
        params: pidParams,
        querystring: PreflightQuerySchema,
        response: { 200: PreflightSchema, ...errors },
      },
    },
    async (request) => processes.preflight(request.params.pid, request.query),
  );
  app.post(
    '/v1/processes/:pid/checkpoints',
    {
      schema: {
        summary: 'Checkpoint a process tree with CRIU',
        params: pidParams,
        body: ProcessCheckpointBodySchema,
        response: { 201: CheckpointSchema, ...errors },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await processes.checkpoint(request.params.pid, request.body)),
  );
  app.get(
    '/v1/containers/:ref/processes',
    {
      schema: {
        summary: "What a container's processes hold",
        params: refParams,
        response: { 200: ProcessReportSchema, ...errors },
      },
    },
    async (request) => processes.inspectContainer(request.params.ref),
  );
  app.get(
    '/v1/containers/:ref/preflight',
    {
      schema: {
        summary: 'Whether a checkpoint of this container would succeed, with these CRIU options',
        params: refParams,
        querystring: ContainerPreflightQuerySchema,
        response: { 200: PreflightSchema, ...errors },
      },
    },
    async (request) => processes.preflightContainer(request.params.ref, request.query),
  );
};
