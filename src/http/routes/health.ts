import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { HealthSchema } from '../../domain/health.js';
import type { HealthService } from '../../services/health/health-service.js';

export const healthRoutes: FastifyPluginAsyncZod<{ health: HealthService }> = async (app, { health }) => {
  app.get(
    '/v1/health',
    {
      config: { public: true },
      schema: {
        summary: 'Whether Docker (experimental) and CRIU are usable here',
        security: [],
        response: { 200: HealthSchema },
      },
    },
    async () => health.health(),
  );
};
