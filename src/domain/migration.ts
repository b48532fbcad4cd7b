import { z } from 'zod';
import { NameSchema } from './names.js';

export const MigrationPhaseNameSchema = z.enum([
  'preflight',
  'image',
  'precopy',
  'checkpoint',
  'stream',
  'restore',
  'pages',
  'reconcile',
  'finish',
  'rollback',
]);
export type MigrationPhaseName = z.infer<typeof MigrationPhaseNameSchema>;

export const MigrationPhaseSchema = z.object({
  name: MigrationPhaseNameSchema,
  startedAt: z.string(),
  ms: z.number().optional(),
  status: z.enum(['running', 'done', 'failed', 'skipped']),
  detail: z.string().optional(),
});
export type MigrationPhase = z.infer<typeof MigrationPhaseSchema>;

export const MigrationStatusSchema = z.enum(['running', 'succeeded', 'failed', 'rolled_back']);

export const MigrationStrategySchema = z.enum(['stop-and-copy', 'post-copy', 'auto']);
export type MigrationStrategy = z.infer<typeof MigrationStrategySchema>;

export const MigrationSchema = z.object({
  id: z.string(),
  container: z.object({ id: z.string(), name: z.string() }),
  target: z.string(),
  status: MigrationStatusSchema,
  phases: z.array(MigrationPhaseSchema),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  /** From the freeze on the source to the process running on the target. */
  downtimeMs: z.number().optional(),
  bytesSent: z.number(),
  /** What the stream will send, about: the checkpoint's size on disk, known once it is taken. */
  bytesTotal: z.number().optional(),
  checkpointId: z.string().optional(),
  targetCheckpointId: z.string().optional(),
  targetContainer: z.object({ id: z.string(), name: z.string() }).optional(),
  error: z.object({ phase: MigrationPhaseNameSchema, code: z.string(), message: z.string() }).optional(),
  strategy: z
    .object({
      requested: MigrationStrategySchema,
      used: z.enum(['stop-and-copy', 'post-copy']),
      fallback: z.string().optional().describe('why auto did not use post-copy'),
    })
    .optional(),
  /** With a disk pre-copy: its seed checkpoint here and on the target, and the container prepared there from it. */
  precopy: z
    .object({
      checkpointId: z.string(),
      bytes: z.number(),
      targetCheckpointId: z.string().optional(),
      preparedContainer: z.string().optional(),
    })
    .optional(),
  /** For post-copy: where the target fetched the memory pages from (this host's page server). */
  pageServer: z.object({ address: z.string(), port: z.number() }).optional(),
});
export type Migration = z.infer<typeof MigrationSchema>;

const TargetUrlSchema = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'the target must be an http:// or https:// URL of a cryo agent')
  .transform((u) => u.replace(/\/+$/, ''));

export const CreateMigrationBodySchema = z.strictObject({
  target: TargetUrlSchema.describe('the target cryo agent, e.g. http://host-b:7070'),
  targetToken: z.string().min(16).max(512),
  name: NameSchema.optional().describe('the container name on the target (default: the same name)'),
  keepSource: z
    .boolean()
    .default(false)
    .describe('keep the source container, stopped, instead of removing it'),
  strategy: MigrationStrategySchema.default('stop-and-copy').describe(
    'stop-and-copy: every page is sent during the downtime; post-copy: the workload runs on the target at once and its memory pages follow, from the frozen source, on fault and in the background; auto: post-copy when both hosts can and the memory is over the threshold, else stop-and-copy',
  ),
  diskPreCopy: z
    .boolean()
    .default(true)
    .describe(
      "send the root filesystem's changes and the volumes while the container runs, and only what changed since after the freeze; the target's container is created meanwhile (where the source is dumped through runc)",
    ),
});
export type CreateMigrationBody = z.infer<typeof CreateMigrationBodySchema>;

export const PostCopySupportSchema = z.object({
  ok: z.boolean(),
  reason: z.string().optional().describe('why not, when not'),
});
export type PostCopySupport = z.infer<typeof PostCopySupportSchema>;

export const HostInfoSchema = z.object({
  kernel: z.string(),
  arch: z.string(),
  hostname: z.string(),
  criuVersion: z.string(),
  dockerVersion: z.string().describe("its engine's version (Docker's, or Podman's with engine podman)"),
  /** The engine its cryo manages (CRYO_ENGINE); absent from older agents, which manage Docker. */
  engine: z.enum(['docker', 'podman']).optional(),
  freeBytes: z.number(),
  /** What must stay free there (its CRYO_MIN_FREE_BYTES / _PERCENT); absent from older agents. */
  minFreeBytes: z.number().optional(),
  /** Whether it can take part in a post-copy migration (CRIU's lazy pages); absent from older agents. */
  postCopy: PostCopySupportSchema.optional(),
  /** The address it sees the caller at: where a post-copy target reaches the caller's page server by default. */
  peerAddress: z.string().optional(),
});
export type HostInfoReport = z.infer<typeof HostInfoSchema>;

export const MigrationListSchema = z.object({ migrations: z.array(MigrationSchema) });
