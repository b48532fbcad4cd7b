import os from 'node:os';
import type { HostInfo } from '../../domain/host-info.js';

/** This host's kernel, architecture and name. */
export function localHost(): HostInfo {
  return { kernel: os.release(), arch: os.machine(), hostname: os.hostname() };
}
