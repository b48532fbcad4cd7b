import { z } from 'zod';

export const HealthSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  docker: z.object({
    ok: z.boolean(),
    version: z.string().optional(),
    experimental: z.boolean(),
    error: z.string().optional(),
  }),
  criu: z.object({ ok: z.boolean(), version: z.string().optional(), error: z.string().optional() }),
  kernel: z.string(),
});
export type Health = z.infer<typeof HealthSchema>;
