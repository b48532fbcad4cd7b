import { mkdir, open, readdir, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { DiskSpace, ImageStore } from '../../services/ports/image-store.js';

const STAGING = 'staging';
const COMMITTED = 'checkpoints';

/**
 * Checkpoints as directories under `<root>/checkpoints/<id>`, written first under `<root>/staging/<id>`,
 * then fsynced and renamed, so a checkpoint directory that exists is complete.
 */
export class FsImageStore implements ImageStore {
  constructor(private readonly root: string) {}

  async space(): Promise<DiskSpace> {
    const fs = await statfs(this.root);
    return { freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
  }

  async init(): Promise<void> {
    await mkdir(path.join(this.root, STAGING), { recursive: true, mode: 0o700 });
    await mkdir(path.join(this.root, COMMITTED), { recursive: true, mode: 0o700 });
  }

  async stage(id: string): Promise<string> {
    const dir = this.stagingPath(id);
    await mkdir(dir, { recursive: false, mode: 0o700 });
    return dir;
  }

  async commit(id: string): Promise<{ path: string; sizeBytes: number }> {
    const staged = this.stagingPath(id);
    const sizeBytes = await syncTree(staged);
    const final = this.path(id);
    await rename(staged, final);
    await syncDir(path.join(this.root, COMMITTED));
    await syncDir(path.join(this.root, STAGING));
    return { path: final, sizeBytes };
  }

  async discard(id: string): Promise<void> {
    await rm(this.stagingPath(id), { recursive: true, force: true });
  }

  path(id: string): string {
    return path.join(this.root, COMMITTED, id);
  }

  async remove(id: string): Promise<void> {
    await rm(this.path(id), { recursive: true, force: true });
  }

  async sweep(keep: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const entry of await readdir(path.join(this.root, STAGING))) {
      await rm(path.join(this.root, STAGING, entry), { recursive: true, force: true });
      removed.push(path.join(STAGING, entry));
    }
    for (const entry of await readdir(path.join(this.root, COMMITTED))) {
      if (keep.has(entry)) continue;
      await rm(path.join(this.root, COMMITTED, entry), { recursive: true, force: true });
      removed.push(path.join(COMMITTED, entry));
    }
    return removed;
  }

  private stagingPath(id: string): string {
    return path.join(this.root, STAGING, id);
  }
}

/** fsyncs every file and directory below `dir` (files in parallel batches); returns the bytes in files. */
async function syncTree(dir: string): Promise<number> {
  let bytes = 0;
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (d: string): Promise<void> => {
    dirs.push(d);
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) files.push(p);
    }
  };
  await walk(dir);
  const batch = 16;
  for (let i = 0; i < files.length; i += batch) {
    const sizes = await Promise.all(files.slice(i, i + batch).map(syncFile));
    for (const s of sizes) bytes += s;
  }
  for (const d of dirs.reverse()) await syncDir(d);
  return bytes;
}

async function syncFile(file: string): Promise<number> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
