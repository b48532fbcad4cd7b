import { z } from 'zod';

// Docker's own rule for container names, also used for checkpoint names: no "/", no "..", no leading dot.
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export const NameSchema = z
  .string()
  .regex(
    NAME_PATTERN,
    'must start with a letter or digit and hold only letters, digits, "_", "." and "-" (at most 128)',
  )
  .refine((s) => !s.includes('..'), 'must not contain ".."');
export type Name = z.infer<typeof NameSchema>;

/** A container id, a unique id prefix or a container name. */
export const ContainerRefSchema = NameSchema.describe('container id, unique id prefix, or name');
export type ContainerRef = z.infer<typeof ContainerRefSchema>;

export const CheckpointIdSchema = z
  .string()
  .regex(/^[0-9a-z]{8,64}$/, 'a checkpoint id is 8 to 64 lowercase letters and digits');
export type CheckpointId = z.infer<typeof CheckpointIdSchema>;
