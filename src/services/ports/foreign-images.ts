/** A file that another engine's restore needs beside a checkpoint's CRIU images. */
export interface ForeignImageFile {
  /** Its name inside the images directory. */
  name: string;
  body: Buffer;
}

/** What a checkpoint of a Docker container needs so that another engine restores it. */
export interface ForeignImages {
  /**
   * For Podman: Docker dumps the network namespace empty (libnetwork sets up a new one after the restore), while
   * Podman gives runc a namespace it made, which CRIU joins only when the images name the namespace external.
   */
  forPodman(imagesDir: string): Promise<ForeignImageFile[]>;
}
