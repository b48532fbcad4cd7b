import type { Frame, RegisterFrame } from '../../domain/sidecar/protocol.js';
import type { Decoded } from '../../domain/sidecar/frame-codec.js';

/** One connection to the sidecar SDK of a job, which has registered itself. */
export interface SidecarChannel {
  readonly register: RegisterFrame;
  /** Frames after the register, one at a time: reading pauses while the handler runs. */
  onFrame(handler: (decoded: Decoded) => Promise<void>): void;
  send(frame: Frame, payload?: Buffer): Promise<void>;
  /** Ends the connection and waits until the job has closed its end too. */
  close(): Promise<void>;
  /** Settles when the connection is gone, whichever side closed it; with the error, if any. */
  readonly closed: Promise<Error | undefined>;
}

export interface ConnectOptions {
  timeoutMs: number;
  /** Keep trying while the socket does not exist yet (a job that is starting). */
  waitForSocket?: boolean;
}

/** Reaches the sidecar of the process `pid` (a container's init): its socket through /proc/<pid>/root. */
export interface SidecarConnector {
  connect(pid: number, options: ConnectOptions): Promise<SidecarChannel>;
}
