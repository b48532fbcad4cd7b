/** What `POST /v1/checkpoints` takes: a checkpoint archive, plain or compressed (detected from its bytes). */
export const CHECKPOINT_ARCHIVE_TYPES = [
  'application/x-tar',
  'application/gzip',
  'application/x-gzip',
  'application/zstd',
  'application/octet-stream',
] as const;

/** What `POST /v1/images` takes: the output of `docker save`. */
export const IMAGE_ARCHIVE_TYPES = ['application/x-tar', 'application/octet-stream'] as const;

/** Every type that reaches a route as a raw stream rather than a parsed body. */
export const STREAM_TYPES = [...new Set<string>([...CHECKPOINT_ARCHIVE_TYPES, ...IMAGE_ARCHIVE_TYPES])];
