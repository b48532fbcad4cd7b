/** Where checkpoint files live: staged while they are written, visible only once committed. */
export interface ImageStore {
  /** Creates an empty staging directory for a checkpoint and returns its path. */
  stage(id: string): Promise<string>;
  /** Makes a staged checkpoint durable (fsync) and visible (rename); returns its size in bytes. */
  commit(id: string): Promise<{ path: string; sizeBytes: number }>;
  /** Drops a staged checkpoint. */
  discard(id: string): Promise<void>;
  /** The committed checkpoint's directory. */
  path(id: string): string;
  remove(id: string): Promise<void>;
  /** The file system the checkpoints are written to: bytes free (for unprivileged use) and its size. */
  space(): Promise<DiskSpace>;
  /** Removes every staging directory and every committed directory whose id is not in `keep`. */
  sweep(keep: Set<string>): Promise<string[]>;
}

export interface DiskSpace {
  freeBytes: number;
  totalBytes: number;
}
