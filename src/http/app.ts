import swagger from '@fastify/swagger';
import { registryRoutes } from './routes/registry.js';
import type { RegistryService } from '../services/registry/registry-service.js';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { ArchiveService } from '../services/archive/archive-service.js';
import type { HostService } from '../services/host/host-service.js';
import type { ProcessService } from '../services/process/process-service.js';
import type { MigrationService } from '../services/migration/migration-service.js';
import type { ScheduleService } from '../services/schedule/schedule-service.js';
import type { CheckpointService } from '../services/checkpoint/checkpoint-service.js';
import type { HealthService } from '../services/health/health-service.js';
import type { MetricsExposition } from '../services/ports/metrics.js';
import { CRYO_VERSION } from '../version.js';
import { installAuth } from './auth.js';
import { installBodyDeadline } from './body-deadline.js';
import { DEADLINES } from '../defaults.js';
import { clientErrorHandler, installErrorHandler } from './error-handler.js';
import { STREAM_TYPES } from './media-types.js';
import { installStreamBodyGuard } from './stream-body.js';
import { archiveRoutes } from './routes/archives.js';
import { checkpointRoutes } from './routes/checkpoints.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { hostRoutes } from './routes/host.js';
import { migrationRoutes } from './routes/migrations.js';
import { processRoutes } from './routes/processes.js';
import { scheduleRoutes } from './routes/schedules.js';

export interface AppDeps {
  token: string;
  checkpoints: CheckpointService;
  archives: ArchiveService;
  schedules: ScheduleService;
  migrations: MigrationService;
  host: HostService;
  processes: ProcessService;
  health: HealthService;
  registry: RegistryService;
  /** GET /metrics; without it, no such route. */
  metrics?: MetricsExposition;
  metricsPublic?: boolean;
  logLevel?: string;
  /** The process's logger (pino), shared with the services; without it, one of `logLevel`. */
  logger?: FastifyBaseLogger;
  /** How long a request body may stand still before it is answered 408 (0: never). */
  bodyTimeoutMs?: number;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: deps.logLevel ?? 'info' } }),
    bodyLimit: 1024 * 1024,
    clientErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  // Archives and images arrive as raw bodies: these content types reach the route as a stream.
  app.addContentTypeParser(STREAM_TYPES, (_request, payload, done) => done(null, payload));
  installAuth(app, deps.token);
  installStreamBodyGuard(app);
  installBodyDeadline(app, deps.bodyTimeoutMs ?? DEADLINES.requestBody.ms);

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
  await app.register(registryRoutes, { registry: deps.registry });
  await app.register(migrationRoutes, { migrations: deps.migrations });
  await app.register(hostRoutes, { host: deps.host });
  await app.register(processRoutes, { processes: deps.processes });
  if (deps.metrics)
    await app.register(metricsRoutes, { metrics: deps.metrics, public: deps.metricsPublic ?? false });
  return app;
}
