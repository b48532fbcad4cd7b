import os from 'node:os';

export interface HostInfo {
  kernel: string;
  arch: string;
  hostname: string;
}

export function localHost(): HostInfo {
  return { kernel: os.release(), arch: os.machine(), hostname: os.hostname() };
}
