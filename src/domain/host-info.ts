/** The host a checkpoint is taken or restored on, as a peer and a manifest see it. */
export interface HostInfo {
  kernel: string;
  arch: string;
  hostname: string;
}
