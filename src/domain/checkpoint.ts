import { z } from 'zod';
import {
  CheckpointIdSchema,
  ContainerIdSchema,
  ContainerRefSchema,
  MigrationIdSchema,
  NameSchema,
} from './names.js';

export const CheckpointStatsSchema = z.object({
  dumpMs: z.number().describe('time spent in the dump itself (runtime and CRIU)'),
  totalMs: z.number().describe('time of the whole operation, storing and cataloguing included'),
  frozenMs: z.number().optional().describe("CRIU's frozen time, when the runtime reports it"),
  pausedMs: z
    .number()
    .optional()
    .describe(
      'leave-running: how long the workload stood still in all, from the freeze to the thaw (with consistentRootfs, the root filesystem was read meanwhile)',
    ),
  freezingMs: z.number().optional(),
  memdumpMs: z.number().optional(),
  memwriteMs: z.number().optional(),
  pagesScanned: z.number().optional(),
  pagesWritten: z.number().optional(),
  path: z
    .enum(['runc', 'docker', 'podman'])
    .optional()
    .describe(
      "how the container was dumped: straight through runc, or through Docker's or Podman's checkpoint API",
    ),
});
export type CheckpointStats = z.infer<typeof CheckpointStatsSchema>;

export const CheckpointStatusSchema = z.enum(['complete']);
export type CheckpointStatus = z.infer<typeof CheckpointStatusSchema>;

export const CheckpointContainerSchema = z.object({
  id: z.string(),
  name: z.string(),
  image: z.string(),
});
export type CheckpointContainer = z.infer<typeof CheckpointContainerSchema>;

export const CheckpointKindSchema = z.enum(['container', 'process']);

export const CheckpointProcessSchema = z.object({
  pid: z.number(),
  comm: z.string(),
  cmdline: z.array(z.string()),
});

export const ApplicationModeSchema = z.enum(['exactly_once', 'at_least_once']);
export type ApplicationMode = z.infer<typeof ApplicationModeSchema>;

export const CheckpointApplicationSchema = z.object({
  job: z.string(),
  checkpointId: z.number().int().positive().describe("the operator checkpoint's id (operators/chk-<n>)"),
  mode: ApplicationModeSchema,
  subtasks: z.number().int().nonnegative(),
  stateBytes: z.number().int().nonnegative(),
});
export type CheckpointApplication = z.infer<typeof CheckpointApplicationSchema>;

/**
 * A migration's disk pre-copy comes in two checkpoints: the seed (the root filesystem's changes and the volumes,
 * read while the container ran; no process), then the changes since the seed with the process (read frozen).
 */
export const DiskPreCopySchema = z.object({
  part: z.enum(['seed', 'changes']),
  seed: NameSchema.describe("the seed checkpoint's name"),
});
export type DiskPreCopy = z.infer<typeof DiskPreCopySchema>;

/**
 * An incremental checkpoint's place in its chain: the memory pages equal to its parent's at the same address are
 * not stored in it (CRIU reads them through the parent link of its images), nor are files equal to the parent's.
 */
export const CheckpointChainSchema = z.object({
  parent: CheckpointIdSchema.optional().describe(
    'the checkpoint it builds on; none for the full one at the base',
  ),
  depth: z.number().int().nonnegative().describe('0 for a full checkpoint, 1 for its child, and so on'),
  pages: z
    .object({
      total: z.number().int().nonnegative().describe('pages of private memory its images describe'),
      stored: z.number().int().nonnegative().describe('of those, the pages stored in this checkpoint itself'),
    })
    .optional(),
  ownBytes: z
    .number()
    .int()
    .nonnegative()
    .describe('the bytes this checkpoint holds that no other does: what deleting it frees'),
});
export type CheckpointChain = z.infer<typeof CheckpointChainSchema>;

/** When an incremental checkpoint starts a new chain with a full one instead. */
export const ChainPolicySchema = z.strictObject({
  fullEvery: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(24)
    .describe(
      'a full checkpoint at least every N checkpoints of the container (a chain holds at most N levels)',
    ),
  maxChainRatio: z
    .number()
    .positive()
    .max(100)
    .default(1)
    .describe(
      "a full checkpoint once the increments above the base hold this many times the base's bytes (1: once they are as large as a full one)",
    ),
});
export type ChainPolicy = z.infer<typeof ChainPolicySchema>;

/** Incremental or not, as a request or a schedule asks: true takes the chain policy's defaults. */
export const IncrementalSchema = z.union([z.boolean(), ChainPolicySchema]);

/** The migration a checkpoint belongs to: the catalog's mark, never its name, says what the sweeper may remove. */
export const MigrationMarkSchema = z.object({ id: MigrationIdSchema });
export type MigrationMark = z.infer<typeof MigrationMarkSchema>;

/** An archive's import for a migration (the target side): the imported checkpoint is marked as the migration's. */
export const ImportQuerySchema = z.object({
  migration: MigrationIdSchema.optional().describe(
    'the id of the migration this import is for; its checkpoint is then removed with the migration',
  ),
});
export type ImportQuery = z.infer<typeof ImportQuerySchema>;

export const CheckpointSchema = z.object({
  id: CheckpointIdSchema,
  name: NameSchema,
  kind: CheckpointKindSchema.default('container'),
  container: CheckpointContainerSchema.optional().describe('for kind "container"'),
  process: CheckpointProcessSchema.optional().describe('for kind "process": the root of the dumped tree'),
  createdAt: z.string().describe('ISO 8601'),
  leaveRunning: z.boolean(),
  processImage: z
    .boolean()
    .optional()
    .describe('false when the checkpoint holds no CRIU image (application: "only")'),
  application: CheckpointApplicationSchema.optional().describe(
    "the job's operator state, for a checkpoint taken with application",
  ),
  lazyPages: z
    .boolean()
    .optional()
    .describe(
      "true when its memory pages are not in it (a post-copy migration's): only that migration restores it",
    ),
  diskPreCopy: DiskPreCopySchema.optional().describe(
    "a migration's disk pre-copy: the seed, or the changes since it (restored in place, or into the container prepared from the seed)",
  ),
  migration: MigrationMarkSchema.optional().describe(
    'set on the checkpoints a migration makes or receives: its sweeper removes them after the retention period; no other checkpoint is ever swept',
  ),
  chain: CheckpointChainSchema.optional().describe(
    'set on the checkpoints of a chain (incremental ones, and the full one they build on)',
  ),
  layer: z
    .object({ digest: z.string(), size: z.number().int().nonnegative() })
    .optional()
    .describe(
      'its own archive as a registry layer (known once pushed or pulled): a later push or pull skips it',
    ),
  sizeBytes: z
    .number()
    .int()
    .nonnegative()
    .describe("the bytes of its files (for an incremental checkpoint, not its parents')"),
  stats: CheckpointStatsSchema,
  status: CheckpointStatusSchema,
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

/** What a checkpoint holds itself: an incremental one, not what it shares with its parent. */
export function heldBytes(checkpoint: Checkpoint): number {
  return checkpoint.chain?.ownBytes ?? checkpoint.sizeBytes;
}

// A POST without a body arrives as null; it means "all defaults".
const orEmpty = (v: unknown) => v ?? {};

/** The CRIU options that Docker does not expose, passed per request (recorded, and used again at restore). */
export const ContainerCriuOptionsSchema = z.strictObject({
  tcpEstablished: z
    .boolean()
    .default(false)
    .describe('keep established TCP connections across checkpoint and restore (CRIU --tcp-established)'),
  fileLocks: z.boolean().default(false).describe('dump and restore file locks (CRIU --file-locks)'),
  externalUnixSockets: z
    .boolean()
    .default(false)
    .describe('let CRIU dump unix sockets whose peer is outside the container (CRIU --ext-unix-sk)'),
  ghostLimitBytes: z
    .number()
    .int()
    .positive()
    .max(1 << 30)
    .optional()
    .describe(
      "largest deleted-but-open file CRIU stores in the image (CRIU --ghost-limit; CRIU's default is 1 MiB)",
    ),
});
export type ContainerCriuOptions = z.infer<typeof ContainerCriuOptionsSchema>;

export const CreateCheckpointBodySchema = z.preprocess(
  orEmpty,
  ContainerCriuOptionsSchema.extend({
    name: NameSchema.optional(),
    leaveRunning: z.boolean().default(false).describe('keep the container running after the dump'),
    consistentRootfs: z
      .boolean()
      .default(true)
      .describe(
        'with leaveRunning: read the root-filesystem changes while the workload is still frozen, so that files and memory agree (false: after it runs again, for a shorter pause)',
      ),
    includeVolumes: z
      .boolean()
      .default(false)
      .describe("also store the contents of the container's named volumes (volumes/<name>.tar)"),
    force: z.boolean().default(false).describe('skip the pre-flight check'),
    incremental: IncrementalSchema.default(false).describe(
      "store only what changed since the container's latest checkpoint (memory pages by content, files), unless the chain policy (true: the defaults) calls for a full one",
    ),
    parent: CheckpointIdSchema.optional().describe(
      'an incremental checkpoint on this checkpoint of the same container, whatever the chain policy says',
    ),
    application: z
      .union([z.boolean(), z.literal('only')])
      .default(false)
      .describe(
        'true: take the stream job\'s operator state through its sidecar first, then the CRIU dump; "only": the operator state alone, without CRIU',
      ),
    applicationMode: ApplicationModeSchema.default('exactly_once').describe(
      'barriers aligned (exactly_once) or only tracked (at_least_once)',
    ),
  }),
);
export type CreateCheckpointBody = z.infer<typeof CreateCheckpointBodySchema>;

/** A page server that a lazy restore fetches its memory pages from: an IP address and a port. */
export const LazyPagesSourceSchema = z.strictObject({
  address: z.union([z.ipv4(), z.ipv6()]).describe('an IPv4 or IPv6 address'),
  port: z.number().int().min(1).max(65535),
});
export type LazyPagesSource = z.infer<typeof LazyPagesSourceSchema>;

export const RestoreBodySchema = z.preprocess(
  orEmpty,
  z.strictObject({
    name: NameSchema.optional().describe(
      'restore into a new container with this name; without it, into the original container',
    ),
    mode: z
      .enum(['process', 'application', 'auto'])
      .optional()
      .describe(
        'process: CRIU (the default with an image); application: start the container afresh and load the operator state; auto: process, else application',
      ),
    env: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*=/, 'NAME=value'))
      .max(256)
      .optional()
      .describe(
        'for an application restore into a new container: environment to set, e.g. a new parallelism',
      ),
    ports: z
      .enum(['free', 'same'])
      .default('free')
      .describe(
        'for a new container: publish on free host ports (default), or on the same ones as the original',
      ),
    abandonOnDisconnect: z
      .boolean()
      .optional()
      .describe(
        'for a new container: remove it again if the caller disconnects before the answer (a migration source rolls back then, and the workload must not run twice)',
      ),
    lazyPages: LazyPagesSourceSchema.optional().describe(
      "for a new container from a checkpoint without its memory pages (a post-copy migration's): the source's page server, which the restored container's pages come from while it runs",
    ),
    prepared: ContainerIdSchema.optional().describe(
      "for the changes part of a disk pre-copy: the container prepared from its seed (POST /v1/checkpoints/{id}/prepare), which the restore completes and starts; name must be that container's",
    ),
  }),
);
export type RestoreBody = z.infer<typeof RestoreBodySchema>;

export const PrepareBodySchema = z.strictObject({
  name: NameSchema.describe("the new container's name: the restore of the changes checkpoint gives the same"),
  ports: z
    .enum(['free', 'same'])
    .default('free')
    .describe('publish on free host ports (default), or on the same ones as the original'),
});
export type PrepareBody = z.infer<typeof PrepareBodySchema>;

export const PreparedContainerSchema = z.object({
  container: z.object({ id: z.string(), name: z.string() }),
  /** How long it waits for its restore before it is removed. */
  expiresAt: z.string(),
});
export type PreparedContainer = z.infer<typeof PreparedContainerSchema>;

export const RestoreResultSchema = z.object({
  container: z.object({ id: z.string(), name: z.string() }).optional(),
  replaced: z
    .string()
    .optional()
    .describe(
      "an in-place restore that replaced the container (its runtime could not restore it in place): the old container's id",
    ),
  pid: z.number().optional().describe('for a process checkpoint: the restored root pid'),
  mode: z.enum(['process', 'application']).optional().describe('how the container was restored'),
  fallback: z.string().optional().describe('mode auto: why the process restore was not used'),
  application: z
    .object({ checkpointId: z.number(), subtasks: z.number() })
    .optional()
    .describe('for an application restore: the operator checkpoint loaded, into how many subtasks'),
  restoreMs: z.number(),
  stats: z
    .object({
      pagesRestored: z.number().optional(),
      forkingMs: z.number().optional(),
      restoreMs: z.number().optional(),
    })
    .optional(),
});
export type RestoreResult = z.infer<typeof RestoreResultSchema>;

export const CompressionSchema = z.enum(['none', 'gzip', 'zstd']);
export type Compression = z.infer<typeof CompressionSchema>;

/**
 * `cryo`: cryo's archive, which cryo imports and which Podman's checkpoint layout it follows. `podman`: the same
 * archive made for `podman container restore --import` (the images join the network namespace Podman makes).
 */
export const ArchiveFormatSchema = z.enum(['cryo', 'podman']);
export type ArchiveFormat = z.infer<typeof ArchiveFormatSchema>;

export const ExportQuerySchema = z.strictObject({
  compress: CompressionSchema.default('none'),
  format: ArchiveFormatSchema.default('cryo'),
});
export type ExportQuery = z.infer<typeof ExportQuerySchema>;

export const ListCheckpointsQuerySchema = z.strictObject({
  container: ContainerRefSchema.optional().describe(
    'only checkpoints of this container (id, id prefix or name)',
  ),
  name: NameSchema.optional().describe('only checkpoints of this name'),
});
export type ListCheckpointsQuery = z.infer<typeof ListCheckpointsQuerySchema>;

export const RestoredContainersQuerySchema = z.strictObject({
  restoredFrom: CheckpointIdSchema.optional().describe(
    'only containers restored from this checkpoint (listed even when the checkpoint has been deleted since)',
  ),
});
export type RestoredContainersQuery = z.infer<typeof RestoredContainersQuerySchema>;

export const RestoredContainerSchema = z.object({
  id: z.string(),
  name: z.string(),
  running: z.boolean(),
  restoredFrom: z.string().describe('the checkpoint it was restored from'),
  pages: z
    .enum(['loading', 'complete', 'failed'])
    .optional()
    .describe('for a lazy restore (post-copy): whether its memory pages are still coming, all in, or failed'),
});
export type RestoredContainer = z.infer<typeof RestoredContainerSchema>;

export const RestoredContainerListSchema = z.object({ containers: z.array(RestoredContainerSchema) });

export const CheckpointListSchema = z.object({ checkpoints: z.array(CheckpointSchema) });
export type CheckpointList = z.infer<typeof CheckpointListSchema>;
