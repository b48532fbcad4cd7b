/** A file that another engine's restore needs beside a checkpoint's CRIU images. */
export interface ForeignImageFile {
  /** Its name inside the images directory. */
  name: string;
  body: Buffer;
}

/** What crosses between Docker's checkpoints and Podman's, in the CRIU images and around them. */
export interface ForeignImages {
  /**
   * For Podman: Docker dumps the network namespace empty (libnetwork sets up a new one after the restore), while
   * Podman gives runc a namespace it made, which CRIU joins only when the images name the namespace external.
   */
  forPodman(imagesDir: string): Promise<ForeignImageFile[]>;
  /**
   * From Podman: the images join a namespace runc is given, which Docker does not give (it sets one up after the
   * restore), so that image goes; returns the architecture the images were dumped on.
   */
  fromPodman(imagesDir: string): Promise<{ machine: string | undefined }>;
  /** Host files for the bind mounts a Podman container has and a Docker one lacks, by destination. */
  podmanBindFiles(): Promise<Record<string, string>>;
}
