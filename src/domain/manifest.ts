import { z } from 'zod';
import { CheckpointApplicationSchema, ContainerCriuOptionsSchema, DiskPreCopySchema } from './checkpoint.js';
import { NameSchema, ImageRefSchema } from './names.js';

export const ManifestEntrySchema = z.object({
  name: z.string().min(1).max(4096),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ManifestEntry = z.infer<typeof ManifestEntrySchema>;

export const MountRecordSchema = z.object({
  type: z.string(),
  name: z.string().optional(),
  source: z.string().optional(),
  destination: z.string(),
  readOnly: z.boolean(),
  /** Whether the archive carries the volume's contents (volumes/<name>.tar). */
  included: z.boolean(),
});
export type MountRecord = z.infer<typeof MountRecordSchema>;

/** cryo.json: what a reader needs to trust and place an archive; it is the archive's first entry. */
/**
 * The image a checkpoint needs. Its id is the engine's own (a config digest with overlay2, a manifest digest on
 * containerd's image store), so another host may know the same image by another id; its layers' diff ids, the
 * files CRIU restores into, are the same on both.
 */
export const ImageIdentitySchema = z.object({
  ref: ImageRefSchema,
  id: ImageRefSchema,
  layers: z
    .array(z.string().regex(/^sha256:[0-9a-f]{64}$/))
    .max(1000)
    .optional(),
});
export type ImageIdentity = z.infer<typeof ImageIdentitySchema>;

export const ManifestSchema = z.object({
  formatVersion: z.number().int().positive(),
  cryoVersion: z.string(),
  createdAt: z.string(),
  checkpoint: z.object({
    id: z.string(),
    name: NameSchema,
    leaveRunning: z.boolean(),
    dumpMs: z.number().nonnegative(),
    /** The CRIU options of the dump; a restore needs the same ones. */
    criu: ContainerCriuOptionsSchema.optional(),
    /** False for an application-only checkpoint: no checkpoint/ directory. */
    processImage: z.boolean().optional(),
    /** True when its memory pages are not in it: a post-copy migration served them from the source. */
    lazyPages: z.boolean().optional(),
    diskPreCopy: DiskPreCopySchema.optional(),
    application: CheckpointApplicationSchema.optional(),
    /**
     * An incremental checkpoint's parent, named as its own cryo.json names it: its images hold only the pages that
     * differ from it, and a restore needs it beside them.
     */
    parent: z.object({ id: z.string(), name: NameSchema, createdAt: z.string() }).optional(),
  }),
  container: z.object({ id: z.string(), name: z.string() }),
  image: ImageIdentitySchema,
  source: z.object({ kernel: z.string(), criuVersion: z.string(), arch: z.string(), hostname: z.string() }),
  mounts: z.array(MountRecordSchema),
  rootfs: z.object({
    changed: z.number().int().nonnegative(),
    deleted: z.number().int().nonnegative(),
    /** The changes part of a disk pre-copy: paths the seed sent that are gone since (removed.files). */
    removed: z.number().int().nonnegative().optional(),
  }),
  entries: z.array(ManifestEntrySchema),
});
export type Manifest = z.infer<typeof ManifestSchema>;
