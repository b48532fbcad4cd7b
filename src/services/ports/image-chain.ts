/** Pages of private memory in a level's images: all it describes, and those stored in the level itself. */
export interface PageCounts {
  total: number;
  stored: number;
}

/**
 * Incremental checkpoints on disk: CRIU images whose pages equal to the parent's are left to the parent (read
 * through CRIU's parent link at restore), and files equal to the parent's shared with it.
 */
export interface ImageChain {
  /**
   * Rewrites the full images in `imagesDir` against the parent's images directory, keeping only the pages that
   * differ, and adds the parent link (`link`, relative to `imagesDir`).
   */
  dedupe(imagesDir: string, parentImagesDir: string, link: string): Promise<PageCounts>;
  /**
   * Writes the level at `imagesDir` into the new directory `into` with its parent's own pages copied in, so that
   * it builds on its grandparent (`link`, relative to `into`'s final place; none: it becomes a full level).
   */
  rebase(imagesDir: string, into: string, link: string | undefined): Promise<PageCounts>;
  /** Writes the level at `imagesDir` into the new directory `into` as full images, with no parent. */
  flatten(imagesDir: string, into: string): Promise<PageCounts>;
  /** The images directories a restore of this level reads, nearest first; a broken or looping chain throws. */
  chain(imagesDir: string): Promise<string[]>;
  /**
   * Replaces each file below `dir` (but `skip`) that is equal to the one at the same path below `parentDir` with a
   * hard link to it.
   */
  shareFiles(dir: string, parentDir: string, skip: string[]): Promise<void>;
  /** Adds the parent link (relative to `imagesDir`) to a level's images that came without it (an import). */
  attach(imagesDir: string, link: string): Promise<void>;
  /** Hard-links every file below `from` (but `skip`) to the same path below `into`. */
  linkFiles(from: string, into: string, skip: string[]): Promise<void>;
  /** Bytes of the files below `dir` that are not the same files (hard links) as those below `parentDir`. */
  ownBytes(dir: string, parentDir: string | undefined): Promise<number>;
}
