import { z } from 'zod';
import { keyGroupRange } from './key-groups.js';
import { KeyGroupRangeSchema, StateHandleSchema, type RegisterFrame } from './protocol.js';

/** `_metadata` of a complete operator checkpoint: every subtask's state handles and source offsets. */
export const CheckpointMetadataSchema = z.object({
  checkpointId: z.number().int().positive(),
  job: z.string(),
  timestamp: z.number(),
  mode: z.enum(['exactly_once', 'at_least_once']),
  maxParallelism: z.number().int().positive(),
  subtasks: z.array(
    z.object({
      operator: z.string(),
      subtask: z.number().int().nonnegative(),
      handles: z.array(StateHandleSchema),
      offsets: z.record(z.string(), z.number()),
    }),
  ),
});
export type CheckpointMetadata = z.infer<typeof CheckpointMetadataSchema>;

export const OperatorsViewSchema = z.object({
  job: z.string(),
  maxParallelism: z.number(),
  finished: z.boolean().describe('every source has read its input to the end'),
  lastCheckpointId: z
    .number()
    .describe('the latest operator checkpoint the job saw complete or restored from'),
  committedCheckpointId: z
    .number()
    .describe("the sinks' output is visible up to this operator checkpoint (commits follow completion)"),
  operators: z.array(
    z.object({
      id: z.string(),
      kind: z.string(),
      parallelism: z.number(),
      subtasks: z.array(z.object({ subtask: z.number(), keyGroupRange: KeyGroupRangeSchema.optional() })),
    }),
  ),
  lastCompleted: z
    .object({
      checkpoint: z.string().describe("cryo's checkpoint id"),
      checkpointId: z.number().describe('the operator checkpoint id'),
      createdAt: z.string(),
    })
    .optional(),
});
export type OperatorsView = z.infer<typeof OperatorsViewSchema>;

/** The subtasks of a registered topology, with the key-group range of each keyed one. */
export function operatorsOf(register: RegisterFrame): OperatorsView['operators'] {
  return register.operators.map((o) => ({
    id: o.id,
    kind: o.kind,
    parallelism: o.parallelism,
    subtasks: Array.from({ length: o.parallelism }, (_, i) => ({
      subtask: i,
      ...(o.kind === 'keyed' || o.kind === 'multi-input'
        ? { keyGroupRange: keyGroupRange(i, o.parallelism, register.maxParallelism) }
        : {}),
    })),
  }));
}
