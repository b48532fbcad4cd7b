import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { ArchiveService } from '../services/archive-service.js';
import type { ScheduleService } from '../services/schedule-service.js';
import type { CheckpointService } from '../services/checkpoint-service.js';
import type { HealthService } from '../services/health-service.js';
import { CRYO_VERSION } from '../version.js';
import { installAuth } from './auth.js';
import { installErrorHandler } from './error-handler.js';
import { archiveRoutes } from './routes/archives.js';
import { checkpointRoutes } from './routes/checkpoints.js';
import { healthRoutes } from './routes/health.js';
import { scheduleRoutes } from './routes/schedules.js';

export interface AppDeps {
  token: string;
  checkpoints: CheckpointService;
  archives: ArchiveService;
  schedules: ScheduleService;
  health: HealthService;
  logLevel?: string;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: deps.logLevel ?? 'info' },
    bodyLimit: 1024 * 1024,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  installAuth(app, deps.token);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'cryo',
        description: 'Checkpoint/restore orchestrator for Linux containers',
        version: CRYO_VERSION,
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(healthRoutes, { health: deps.health });
  await app.register(checkpointRoutes, { checkpoints: deps.checkpoints });
  await app.register(archiveRoutes, { archives: deps.archives });
  await app.register(scheduleRoutes, { schedules: deps.schedules });
  return app;
}
