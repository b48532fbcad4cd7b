import { copyFile, link, lstat, mkdir, readdir, readlink, rename, rm, cp } from 'node:fs/promises';
import path from 'node:path';
import type { LibpodClient } from './libpod-client.js';

/** Where Podman keeps a container's CRIU images between a checkpoint and a restore (libpod's CheckpointPath). */
export const PODMAN_CHECKPOINT_DIR = 'checkpoint';
/** The runtime spec Podman's restore reads from the bundle; a container that never ran has none. */
export const PODMAN_RUNTIME_SPEC = 'config.json';

interface LibpodInspect {
  Id: string;
  StaticDir: string;
  /** The OCI runtime's name (runc, crun), which Podman's Docker-compatible inspect gives as "oci". */
  OCIRuntime?: string;
  State: { Status: string };
}

/** A container's bundle: libpod's StaticDir, where its spec and its checkpoint live. */
export async function podmanBundle(libpod: LibpodClient, containerId: string): Promise<LibpodInspect> {
  const info = await libpod.get<LibpodInspect>(`/containers/${encodeURIComponent(containerId)}/json`);
  if (!info) throw new Error(`podman has no container ${containerId}`);
  return info;
}

/** Moves a tree (the checkpoint Podman wrote) into cryo's staging directory: a rename, or a copy across devices. */
export async function moveTree(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await cp(from, to, { recursive: true, preserveTimestamps: true });
    await rm(from, { recursive: true, force: true });
  }
}

/**
 * Puts a checkpoint's CRIU images where Podman's restore reads them: hard links (copies across devices), with a
 * chain's `parent` links followed, so that nothing Podman or CRIU does there reaches cryo's own files.
 */
export async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true, mode: 0o700 });
  for (const name of await readdir(from)) {
    const source = path.join(from, name);
    const target = path.join(to, name);
    const stat = await lstat(source);
    if (stat.isSymbolicLink()) {
      await linkTree(path.resolve(from, await readlink(source)), target);
    } else if (stat.isDirectory()) {
      await linkTree(source, target);
    } else if (stat.isFile()) {
      await link(source, target).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EXDEV') throw err;
        await copyFile(source, target);
      });
    }
  }
}
