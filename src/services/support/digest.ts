import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { RegistryArtifactInvalidError } from '../../domain/errors/index.js';

/** The sha256 digest of bytes, as OCI names it. */
export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Reads a stream to its end: its digest and size. */
export async function digestStream(stream: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Passes a blob's bytes through, failing as soon as there are more than `size`; `verify()` once they have all
 * gone by throws unless their count and digest are the descriptor's.
 */
export function checkingDigest(
  name: string,
  digest: string,
  size: number,
): Transform & { verify: () => void } {
  const hash = createHash('sha256');
  let seen = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > size) {
        cb(
          new RegistryArtifactInvalidError(
            name,
            `the blob ${digest} runs past the ${size} bytes its descriptor says`,
          ),
        );
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  return Object.assign(t, {
    verify: () => {
      const got = `sha256:${hash.digest('hex')}`;
      if (seen !== size || got !== digest)
        throw new RegistryArtifactInvalidError(
          name,
          `the blob ${digest} does not match its descriptor (${seen} bytes, ${got})`,
        );
    },
  });
}
