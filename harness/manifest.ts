import type { Manifest, ManifestEntry } from '../src/domain/manifest.js';

/** A minimal valid cryo.json listing `entries`, for tests that build archives by hand. */
export function sampleManifest(entries: ManifestEntry[]): Manifest {
  return {
    formatVersion: 1,
    cryoVersion: 'test',
    createdAt: new Date(0).toISOString(),
    checkpoint: { id: 'x', name: 'x', leaveRunning: true, dumpMs: 1 },
    container: { id: 'c', name: 'c' },
    image: { ref: 'i', id: 'i' },
    source: { kernel: 'k', criuVersion: '4.2', arch: 'x86_64', hostname: 'h' },
    mounts: [],
    rootfs: { changed: 0, deleted: 0 },
    entries,
  };
}
