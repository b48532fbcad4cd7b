import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBodySchema } from '../../domain/error-body.js';
import type { MetricsExposition } from '../../services/ports/metrics.js';

/** Prometheus's scrape endpoint; it takes the token unless the operator made it public (CRYO_METRICS_PUBLIC=1). */
export const metricsRoutes: FastifyPluginAsyncZod<{ metrics: MetricsExposition; public: boolean }> = async (
  app,
  { metrics, public: open },
) => {
  app.get(
    '/metrics',
    {
      config: { public: open },
      schema: {
        summary: "cryo's metrics in Prometheus's text format",
        ...(open ? { security: [] } : {}),
        response: { 200: z.string(), 401: ErrorBodySchema },
      },
    },
    async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()),
  );
};
