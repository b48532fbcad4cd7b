import { HostMismatchError } from './errors/index.js';

export interface HostFacts {
  arch: string;
  criuVersion: string;
  kernel: string;
}

/** CRIU reads images of its own version or older, on the same architecture and a kernel at least as new. */
export function requireHostFits(source: HostFacts, target: HostFacts): void {
  if (source.arch !== target.arch) {
    throw new HostMismatchError(
      `the checkpoint was taken on ${source.arch}, the restoring host is ${target.arch}`,
      'restore it on a host of the same architecture',
    );
  }
  if (compareVersions(target.criuVersion, source.criuVersion) < 0) {
    throw new HostMismatchError(
      `the checkpoint was written by CRIU ${source.criuVersion}, the restoring host has CRIU ${target.criuVersion}`,
      `install CRIU >= ${source.criuVersion} there (native-scripts/install-criu.sh)`,
    );
  }
  if (compareVersions(kernelVersion(target.kernel), kernelVersion(source.kernel)) < 0) {
    throw new HostMismatchError(
      `the checkpoint was taken on kernel ${source.kernel}, the restoring host runs the older ${target.kernel}`,
      'restore it on a host whose kernel is at least as new as the source host',
    );
  }
}

function kernelVersion(release: string): string {
  return /^(\d+\.\d+)/.exec(release)?.[1] ?? '0.0';
}

/** Compares dotted numeric versions: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
