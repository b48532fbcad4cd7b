import { z } from 'zod';
import { RegistryReferenceSchema } from './oci-artifact.js';
import { ArchiveFormatSchema } from './checkpoint.js';

export const PushBodySchema = z.strictObject({
  reference: RegistryReferenceSchema.refine(
    (r) => !r.digest,
    'push to a tag; the digest is what the push answers',
  ).describe('REGISTRY/REPOSITORY[:TAG] (the tag defaults to latest)'),
  format: ArchiveFormatSchema.default('cryo').describe(
    "cryo's artifact (a layer per level), or a Podman checkpoint image (podman container restore IMAGE)",
  ),
});
export type PushBody = z.infer<typeof PushBodySchema>;

export const PullBodySchema = z.strictObject({
  reference: RegistryReferenceSchema.describe('REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]'),
});
export type PullBody = z.infer<typeof PullBodySchema>;

export const PushResultSchema = z.object({
  reference: z.string(),
  digest: z.string().describe("the manifest's digest: pull REGISTRY/REPOSITORY@DIGEST for exactly this push"),
  layers: z.array(
    z.object({
      digest: z.string(),
      size: z.number(),
      uploaded: z.boolean().describe('false when the registry had the blob already'),
      mounted: z
        .boolean()
        .optional()
        .describe(
          'true when the registry took it from another of its repositories (a cross-repository mount)',
        ),
    }),
  ),
  uploadedBytes: z.number(),
});
export type PushResult = z.infer<typeof PushResultSchema>;
