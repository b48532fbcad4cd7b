import { z } from 'zod';
import { ContainerRefSchema } from './names.js';
import { RegistryRepositorySchema } from './oci-artifact.js';
import { IncrementalSchema } from './checkpoint.js';

/** An IANA time zone name that this runtime knows. */
export const TimezoneSchema = z
  .string()
  .min(1)
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'not a known IANA time zone (for example "UTC" or "Europe/Berlin")');

const keep = z.number().int().min(1).max(10_000).optional();

/** Grandfather-father-son retention: the union of what each bucket keeps (like `restic forget`). */
export const RetentionSchema = z.strictObject({
  last: keep.describe('the newest N'),
  hourly: keep.describe('the newest of each of the last N hours that have one'),
  daily: keep,
  weekly: keep,
  monthly: keep,
  maxTotalBytes: z
    .number()
    .int()
    .min(1)
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe(
      "the most the schedule's checkpoints may take on disk together: the oldest go first, those the counts above do not keep before those they do, never the newest",
    ),
});
export type Retention = z.infer<typeof RetentionSchema>;

export const ScheduleIdSchema = z
  .string()
  .regex(/^[0-9a-z]{8,64}$/, 'a schedule id is 8 to 64 lowercase letters and digits');

export const ScheduleRunOutcomeSchema = z.enum(['running', 'succeeded', 'failed', 'skipped']);

export const ScheduleRunSchema = z.object({
  id: z.string(),
  scheduleId: z.string(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  outcome: ScheduleRunOutcomeSchema,
  trigger: z.enum(['cron', 'catch-up', 'manual']),
  checkpointId: z.string().optional(),
  /** How long the container was frozen: the dump, during which Docker keeps it frozen. */
  frozenMs: z.number().optional(),
  error: z.string().optional(),
  pruned: z.array(z.string()).optional(),
  /** The snapshot pushed to the schedule's repository, under its name as the tag; or why the push failed. */
  push: z
    .object({ reference: z.string(), digest: z.string().optional(), error: z.string().optional() })
    .optional(),
  /** Tags of pruned snapshots deleted from the registry, or why one could not be. */
  unpushed: z.array(z.object({ reference: z.string(), error: z.string().optional() })).optional(),
  /** After retention: what the schedule's checkpoints take on disk, and whether that is still over maxTotalBytes. */
  retention: z
    .object({
      storedBytes: z.number(),
      maxTotalBytes: z.number().optional(),
      overLimit: z.boolean(),
      reason: z.string().optional(),
    })
    .optional(),
});
export type ScheduleRun = z.infer<typeof ScheduleRunSchema>;

/** As for a checkpoint: the stream job's operator state too (true), or alone ("only", nothing frozen). */
export const ScheduleApplicationSchema = z
  .union([z.boolean(), z.literal('only')])
  .describe(
    'take the operator state of the stream job through its sidecar: true (with the CRIU dump) or "only"',
  );

export const ScheduleSchema = z.object({
  id: ScheduleIdSchema,
  container: z.object({ id: z.string(), name: z.string() }),
  cron: z.string(),
  timezone: z.string().optional(),
  leaveRunning: z.boolean(),
  application: ScheduleApplicationSchema.optional(),
  retain: RetentionSchema,
  incremental: IncrementalSchema.optional(),
  push: RegistryRepositorySchema.optional(),
  enabled: z.boolean(),
  paused: z.object({ reason: z.string(), since: z.string() }).optional(),
  createdAt: z.string(),
  nextRunAt: z.string().optional(),
  lastRun: ScheduleRunSchema.optional(),
});
export type Schedule = z.infer<typeof ScheduleSchema>;

export const CreateScheduleBodySchema = z.strictObject({
  container: ContainerRefSchema,
  cron: z
    .string()
    .min(1)
    .max(200)
    .describe('5 fields, 6 with seconds first, or @hourly, @daily, @weekly, @monthly'),
  timezone: TimezoneSchema.optional(),
  leaveRunning: z.boolean().default(true),
  application: ScheduleApplicationSchema.default(false),
  retain: RetentionSchema.default({}),
  incremental: IncrementalSchema.default(true).describe(
    'each snapshot stores only what changed since the one before (a full one as the chain policy says); false: every snapshot full',
  ),
  push: RegistryRepositorySchema.optional().describe(
    'push every snapshot to this repository (REGISTRY/REPOSITORY), its name as the tag; retention deletes the tags of the snapshots it prunes',
  ),
  enabled: z.boolean().default(true),
});
export type CreateScheduleBody = z.infer<typeof CreateScheduleBodySchema>;

export const PatchScheduleBodySchema = z.strictObject({
  cron: z.string().min(1).max(200).optional(),
  timezone: TimezoneSchema.nullable().optional(),
  leaveRunning: z.boolean().optional(),
  application: ScheduleApplicationSchema.optional(),
  retain: RetentionSchema.optional(),
  incremental: IncrementalSchema.optional(),
  push: RegistryRepositorySchema.nullable().optional(),
  enabled: z.boolean().optional(),
});
export type PatchScheduleBody = z.infer<typeof PatchScheduleBodySchema>;

export const DeleteScheduleQuerySchema = z.strictObject({
  deleteCheckpoints: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});

export const ScheduleListSchema = z.object({ schedules: z.array(ScheduleSchema) });
export const ScheduleRunListSchema = z.object({ runs: z.array(ScheduleRunSchema) });
