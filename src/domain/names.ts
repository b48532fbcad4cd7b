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

/** A full container id, as Docker gives it. */
export const ContainerIdSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a container id is 64 lowercase hex digits');

export const CheckpointIdSchema = z
  .string()
  .regex(/^[0-9a-z]{8,64}$/, 'a checkpoint id is 8 to 64 lowercase letters and digits');
export type CheckpointId = z.infer<typeof CheckpointIdSchema>;

/** A migration id, as newId makes it (time-ordered base 36). */
export const MigrationIdSchema = z
  .string()
  .regex(/^[0-9a-z]{8,64}$/, 'a migration id is 8 to 64 lowercase letters and digits');

// Docker's reference grammar (distribution/reference): an optional registry host, path components, a tag and a
// digest; or an image id. Anything else must never reach Docker's API, where a ".." in the path is redirected.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN = '[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*(?::[0-9]{1,5})?';
const IMAGE_REF_PATTERN = new RegExp(
  `^(?:sha256:[a-f0-9]{64}|[a-f0-9]{12,64}|(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?)$`,
);

/** An image reference (`busybox`, `registry:5000/team/app:1.2@sha256:...`) or an image id (`sha256:...`). */
export const ImageRefSchema = z
  .string()
  .max(512)
  .regex(IMAGE_REF_PATTERN, 'must be an image reference (name[:tag][@digest]) or an image id (sha256:...)')
  // Docker refuses a repository name over 255 characters (with a 400 that says "no such image").
  .refine(
    (s) => s.split('@')[0]!.replace(/:[\w][\w.-]*$/, '').length <= 255,
    'the image name is over 255 characters',
  );
export type ImageRef = z.infer<typeof ImageRefSchema>;
