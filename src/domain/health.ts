import { z } from 'zod';

export const HealthSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  docker: z.object({
    engine: z
      .enum(['docker', 'podman'])
      .optional()
      .describe('the engine cryo manages (CRYO_ENGINE): this object describes it, Podman included'),
    ok: z.boolean(),
    version: z.string().optional(),
    experimental: z.boolean(),
    storageDriver: z.string().optional(),
    containerdStore: z.boolean().optional().describe("images in containerd's image store"),
    cryoRuntime: z.boolean().optional().describe("dockerd lists cryo's OCI runtime"),
    defaultRuntime: z.string().optional(),
    restorePath: z
      .enum(['cryo-runtime', 'docker-checkpoint', 'podman', 'none'])
      .optional()
      .describe(
        "how containers cryo creates are restored: cryo's runtime, docker start --checkpoint, Podman's restore API, or not at all (Docker >= 28 without cryo's runtime: moby/moby#50750)",
      ),
    error: z.string().optional(),
  }),
  criu: z.object({ ok: z.boolean(), version: z.string().optional(), error: z.string().optional() }),
  kernel: z.string(),
});
export type Health = z.infer<typeof HealthSchema>;
