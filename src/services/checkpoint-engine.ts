/** The checkpoint/restore tool (CRIU) as the services see it. */
export interface CheckpointEngine {
  /** The tool's version, e.g. "4.2.1"; throws CriuUnavailableError when it is missing. */
  version(): Promise<string>;
  /** Runs the tool's own host check; throws CriuUnavailableError when it fails. */
  check(): Promise<void>;
}
