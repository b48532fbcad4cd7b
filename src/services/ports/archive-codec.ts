import type { Readable } from 'node:stream';
import type { Compression } from '../../domain/checkpoint.js';
import type { Manifest } from '../../domain/manifest.js';

export interface ArchiveExtra {
  /** Its path in the archive. */
  name: string;
  body: Buffer;
}

/** An archive for another engine (Podman's layout): no cryo.json, and files that engine needs besides. */
export interface ForeignPack {
  extra: ArchiveExtra[];
}

export interface ExtractLimits {
  /** The most bytes the archive's entries may hold in all. */
  maxBytes: number;
  /** Called as soon as the manifest (the first entry) is read; throwing stops the import. */
  onManifest?: (manifest: Manifest) => void;
  /**
   * Takes an archive without cryo.json too (Podman's `--export`): its entries get the same checks of paths, kinds
   * and sizes, but no hashes; extract then returns undefined.
   */
  foreign?: boolean;
}

/** Turns a checkpoint directory into an archive stream and back. */
export interface ArchiveCodec {
  /**
   * Lists every file below `dir` (but the manifest) with its size and sha256, in archive order; an entry of `known`
   * is taken as it is, for files that cannot have changed since they were described.
   */
  describe(dir: string, known?: Manifest['entries']): Promise<Manifest['entries']>;
  /** How many bytes `pack` streams uncompressed: an export's Content-Length, known before its first byte. */
  packedSize(manifest: Manifest): number;
  /**
   * Streams `dir` as a tar, `manifest` first, then the manifest's entries, compressed as asked. With `foreign`,
   * another engine's archive: the entries without the manifest, then the extra files.
   */
  pack(dir: string, manifest: Manifest, compress: Compression, foreign?: ForeignPack): Readable;
  /** Reads an archive into the empty directory `dir`, verifying it as it streams; returns its manifest. */
  extract(input: Readable, dir: string, limits: ExtractLimits): Promise<Manifest | undefined>;
  /** How many files a tar (rootfs-diff.tar) holds. */
  countFiles(tarFile: string): Promise<number>;
}
