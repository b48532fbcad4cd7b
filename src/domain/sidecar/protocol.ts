import { z } from 'zod';

/**
 * The sidecar protocol between cryo and a stream job: newline-delimited JSON frames, every one with the protocol
 * version `v`. State bytes travel as a `state` frame followed by exactly `size` raw bytes.
 */
export const PROTOCOL_VERSION = 1;
/** Largest JSON frame (one line) either side accepts. */
export const MAX_FRAME_BYTES = 1 << 20;
/** How much state the SDK and cryo put in one `state` frame. */
export const STATE_CHUNK_BYTES = 8 << 20;
/** Largest state payload one `state` frame may announce. */
export const MAX_STATE_CHUNK_BYTES = 64 << 20;
/** Where the SDK listens inside the container; cryo reaches it through /proc/<pid>/root. */
export const SIDECAR_SOCKET_PATH = '/run/cryo/sidecar.sock';
/** Present at start when cryo restores the job's state: the SDK waits for a `restore` before it reads input. */
export const SIDECAR_RESTORE_MARKER = '/run/cryo/restore.json';

const Id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
const CheckpointId = z.number().int().positive();
const Subtask = z.number().int().nonnegative().max(32767);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const KeyGroupRangeSchema = z
  .object({ start: z.number().int().nonnegative(), end: z.number().int().nonnegative() })
  .refine((r) => r.start <= r.end, 'start must not be after end');

export const OperatorSchema = z.object({
  id: Id,
  kind: z.enum(['source', 'keyed', 'multi-input', 'sink', 'map']),
  parallelism: z.number().int().positive().max(32768),
});

export const StateHandleSchema = z.object({
  /** The file the state was streamed to, in the checkpoint's operator directory: a plain file name. */
  name: Id,
  keyGroupRange: KeyGroupRangeSchema.optional(),
  size: z.number().int().nonnegative(),
  sha256: Sha256,
  /** In operators/shared/: may be referenced by later checkpoints, unchanged (incremental snapshots). */
  shared: z.boolean().optional(),
});
export type StateHandle = z.infer<typeof StateHandleSchema>;

const Offsets = z.record(z.string().max(256), z.number().int().nonnegative());

const frame = <K extends string, T extends z.ZodRawShape>(type: K, shape: T) =>
  z.strictObject({ v: z.literal(PROTOCOL_VERSION), type: z.literal(type), ...shape });

export const RegisterFrameSchema = frame('register', {
  job: Id,
  maxParallelism: z.number().int().positive().max(32768),
  operators: z.array(OperatorSchema).min(1).max(256),
  /** Every source has reached the end of its input; a checkpoint now commits the last output. */
  finished: z.boolean(),
  /** The highest checkpoint id the job has been triggered with, restored from or seen complete (0: none). */
  lastCheckpointId: z.number().int().nonnegative(),
  /** Every sink's output is visible up to this checkpoint (commits run after `complete`, asynchronously). */
  committedCheckpointId: z.number().int().nonnegative(),
});
export const TriggerFrameSchema = frame('trigger', {
  checkpointId: CheckpointId,
  timestamp: z.number().int().nonnegative(),
  mode: z.enum(['exactly_once', 'at_least_once']),
  /** The job may reference shared state of its last completed checkpoint instead of sending it again. */
  incremental: z.boolean().optional(),
});
export const StateFrameSchema = frame('state', {
  checkpointId: CheckpointId,
  operator: Id,
  subtask: Subtask,
  /** Several frames with one name append to one state file. */
  name: Id,
  shared: z.boolean().optional(),
  size: z.number().int().nonnegative().max(MAX_STATE_CHUNK_BYTES),
});
export const AckFrameSchema = frame('ack', {
  checkpointId: CheckpointId,
  operator: Id,
  subtask: Subtask,
  handles: z.array(StateHandleSchema).max(4096),
  offsets: Offsets.optional(),
});
export const DeclineFrameSchema = frame('decline', {
  checkpointId: CheckpointId,
  operator: Id,
  subtask: Subtask,
  reason: z.string().max(4096),
});
export const CompleteFrameSchema = frame('complete', { checkpointId: CheckpointId });
export const AbortFrameSchema = frame('abort', { checkpointId: CheckpointId, reason: z.string().max(4096) });
export const AssignmentSchema = z.object({
  operator: Id,
  subtask: Subtask,
  keyGroupRange: KeyGroupRangeSchema.optional(),
  handles: z.array(StateHandleSchema).max(4096),
  offsets: Offsets.optional(),
});
export const RestoreFrameSchema = frame('restore', {
  checkpointId: CheckpointId,
  assignments: z.array(AssignmentSchema).max(32768),
});
/** The SDK has loaded every assigned state handle and offset of a `restore`, and runs again. */
export const RestoredFrameSchema = frame('restored', { checkpointId: CheckpointId });
export const ErrorFrameSchema = frame('error', { code: z.string().max(64), message: z.string().max(4096) });

export const FrameSchema = z.discriminatedUnion('type', [
  RegisterFrameSchema,
  TriggerFrameSchema,
  StateFrameSchema,
  AckFrameSchema,
  DeclineFrameSchema,
  CompleteFrameSchema,
  AbortFrameSchema,
  RestoreFrameSchema,
  RestoredFrameSchema,
  ErrorFrameSchema,
]);
export type Frame = z.infer<typeof FrameSchema>;
export type RegisterFrame = z.infer<typeof RegisterFrameSchema>;
export type AckFrame = z.infer<typeof AckFrameSchema>;
export type DeclineFrame = z.infer<typeof DeclineFrameSchema>;
export type TriggerFrame = z.infer<typeof TriggerFrameSchema>;
export type StateFrame = z.infer<typeof StateFrameSchema>;
export type RestoreFrame = z.infer<typeof RestoreFrameSchema>;
export type Assignment = z.infer<typeof AssignmentSchema>;
export type Operator = z.infer<typeof OperatorSchema>;
export type Mode = TriggerFrame['mode'];
