import { z } from 'zod';

/** How cryo stores a checkpoint in an OCI registry (image-spec 1.1): media types are part of the format. */
export const OciMediaType = {
  MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  /** The artifact's type: a checkpoint of cryo's. */
  CHECKPOINT: 'application/vnd.cryo.checkpoint.v1',
  /** The config blob: the checkpoint's cryo.json, as in its archive. */
  CONFIG: 'application/vnd.cryo.checkpoint.config.v1+json',
  /** A layer: the checkpoint's archive (GET /v1/checkpoints/{id}/archive, uncompressed). */
  LAYER: 'application/vnd.cryo.checkpoint.layer.v1.tar',
  /**
   * An encrypted layer: ocicrypt's type for an encrypted OCI tar layer, the only kind standard tools decrypt
   * (containers/image maps a fixed list of types to their +encrypted counterparts).
   */
  LAYER_ENCRYPTED: 'application/vnd.oci.image.layer.v1.tar+encrypted',
  /** A Podman checkpoint image: a plain OCI image, its one layer the checkpoint's files at its root. */
  IMAGE_CONFIG: 'application/vnd.oci.image.config.v1+json',
  IMAGE_LAYER: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** The annotations cryo sets on a checkpoint's manifest. */
export const OciAnnotation = {
  CREATED: 'org.opencontainers.image.created',
  TITLE: 'org.opencontainers.image.title',
  CHECKPOINT_NAME: 'io.cryo.checkpoint.name',
  CONTAINER_NAME: 'io.cryo.checkpoint.container',
} as const;

/** No manifest, config or layer list of a checkpoint is larger: a bigger one is refused before it is read. */
export const MAX_OCI_MANIFEST_BYTES = 4 * 1024 * 1024;
/** A checkpoint is one layer a level of its chain; more than this is refused as hostile. */
export const MAX_OCI_LAYERS = 64;

export const OciDigestSchema = z
  .string()
  .regex(/^sha256:[a-f0-9]{64}$/, 'a digest is sha256: and 64 lowercase hex digits');

export const OciDescriptorSchema = z.object({
  mediaType: z.string().max(255),
  digest: OciDigestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type OciDescriptor = z.infer<typeof OciDescriptorSchema>;

export const OciManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(OciMediaType.MANIFEST),
  artifactType: z.string().max(255).optional(),
  config: OciDescriptorSchema,
  layers: z.array(OciDescriptorSchema).max(MAX_OCI_LAYERS, `at most ${MAX_OCI_LAYERS} layers`),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type OciManifest = z.infer<typeof OciManifestSchema>;

// distribution/reference: a registry host (with a dot, a colon or "localhost"), path components, a tag or a digest.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST =
  '(?:[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)+|localhost|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?|[a-zA-Z0-9-]+:[0-9]{1,5}';
const REFERENCE = new RegExp(
  `^(?<registry>${HOST})/(?<repository>${COMPONENT}(?:/${COMPONENT})*)(?::(?<tag>[\\w][\\w.-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$`,
);

/** Where a checkpoint is in a registry: `registry.example:5000/team/app:nightly` or `...@sha256:...`. */
export const RegistryReferenceSchema = z
  .string()
  .max(512)
  .transform((s, ctx) => {
    const m = REFERENCE.exec(s)?.groups;
    if (!m || m.repository!.length > 255) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must be REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST] with the registry named (a host with a dot or a port, or localhost)',
      });
      return z.NEVER;
    }
    return {
      registry: m.registry!,
      repository: m.repository!,
      ...(m.tag ? { tag: m.tag } : {}),
      ...(m.digest ? { digest: m.digest } : {}),
    };
  });
export type RegistryReference = z.infer<typeof RegistryReferenceSchema>;

/** The reference as text again, tag or digest included. */
export function formatReference(ref: RegistryReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** A repository to push a schedule's snapshots to, one tag each: `REGISTRY/REPOSITORY`, no tag nor digest. */
export const RegistryRepositorySchema = z
  .string()
  .max(512)
  .refine((s) => {
    const ref = RegistryReferenceSchema.safeParse(s);
    return ref.success && !ref.data.tag && !ref.data.digest;
  }, 'must be REGISTRY/REPOSITORY, with no tag or digest (each snapshot is pushed under its own name as its tag)');
