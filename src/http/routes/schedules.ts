import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBodySchema } from '../../domain/error-body.js';
import { errorResponses } from './error-responses.js';
import {
  CreateScheduleBodySchema,
  DeleteScheduleQuerySchema,
  PatchScheduleBodySchema,
  ScheduleIdSchema,
  ScheduleListSchema,
  ScheduleRunListSchema,
  ScheduleRunSchema,
  ScheduleSchema,
} from '../../domain/schedule.js';
import type { ScheduleService } from '../../services/schedule/schedule-service.js';

const errors = errorResponses;
const params = z.object({ id: ScheduleIdSchema });

export const scheduleRoutes: FastifyPluginAsyncZod<{ schedules: ScheduleService }> = async (
  app,
  { schedules },
) => {
  app.post(
    '/v1/schedules',
    {
      schema: {
        summary: 'Snapshot a container on a cron schedule',
        body: CreateScheduleBodySchema,
        response: { 201: ScheduleSchema, ...errors },
      },
    },
    async (request, reply) => reply.status(201).send(await schedules.create(request.body)),
  );
  app.get(
    '/v1/schedules',
    { schema: { summary: 'List schedules', response: { 200: ScheduleListSchema, 401: ErrorBodySchema } } },
    async () => ({ schedules: schedules.list() }),
  );
  app.get(
    '/v1/schedules/:id',
    { schema: { summary: 'One schedule', params, response: { 200: ScheduleSchema, ...errors } } },
    async (request) => schedules.get(request.params.id),
  );
  app.patch(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'Change a schedule',
        params,
        body: PatchScheduleBodySchema,
        response: { 200: ScheduleSchema, ...errors },
      },
    },
    async (request) => schedules.patch(request.params.id, request.body),
  );
  app.delete(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'Delete a schedule; its checkpoints are kept unless deleteCheckpoints=true',
        params,
        querystring: DeleteScheduleQuerySchema,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      await schedules.remove(request.params.id, request.query.deleteCheckpoints);
      return reply.status(204).send(null);
    },
  );
  app.post(
    '/v1/schedules/:id/run',
    { schema: { summary: 'Take one snapshot now', params, response: { 201: ScheduleRunSchema, ...errors } } },
    async (request, reply) => reply.status(201).send(await schedules.runNow(request.params.id)),
  );
  app.get(
    '/v1/schedules/:id/runs',
    {
      schema: {
        summary: "A schedule's runs: start, end, outcome, checkpoint, frozen time, error",
        params,
        response: { 200: ScheduleRunListSchema, ...errors },
      },
    },
    async (request) => ({ runs: schedules.runs(request.params.id) }),
  );
};
