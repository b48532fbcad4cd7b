import type { Readable } from 'node:stream';

/** One registry, through the OCI distribution API. */
export interface RegistryConnection {
  readonly registry: string;
  hasBlob(repository: string, digest: string): Promise<boolean>;
  /** Mounts a blob from another repository of the same registry; false when the registry would not. */
  mountBlob(repository: string, digest: string, from: string): Promise<boolean>;
  /** `open` makes the blob's bytes afresh for each try. */
  uploadBlob(repository: string, digest: string, size: number, open: () => Promise<Readable>): Promise<void>;
  /** Returns the digest the registry names the manifest by. */
  putManifest(repository: string, reference: string, manifest: Buffer): Promise<string>;
  deleteManifest(repository: string, digest: string): Promise<void>;
  getManifest(repository: string, reference: string): Promise<{ bytes: Buffer; digest: string }>;
  getBlob(repository: string, digest: string): Promise<Readable>;
}

/** Reaches a registry by its host[:port], with the credentials and TLS settings this host has for it. */
export type RegistryConnector = (registry: string) => Promise<RegistryConnection>;

/** Where blobs are known to be: a push mounts a blob from another repository of the same registry. */
export interface BlobLocations {
  repositories(registry: string, digest: string): string[];
  add(registry: string, repository: string, digests: string[]): void;
}
