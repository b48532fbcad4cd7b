import { createReadStream } from 'node:fs';
import { link, lstat, mkdir, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { walkRelative } from '../archive/tar-pack.js';
import { imageChain, PARENT_LINK, parentOf, rewriteLevel, rewritePages } from '../criu/page-chain.js';
import type { ImageChain, PageCounts } from '../../services/ports/image-chain.js';

/** Files smaller than this are stored again rather than compared. */
const SHARE_MIN_BYTES = 64 * 1024;

/**
 * Chains found by content: every page is compared with the parent's page at the same address, so it needs no
 * soft-dirty tracking (off in some kernels: CRIU's --track-mem needs CONFIG_MEM_SOFT_DIRTY).
 */
export class ContentImageChain implements ImageChain {
  async dedupe(imagesDir: string, parentImagesDir: string, linkTo: string): Promise<PageCounts> {
    const counts = await rewritePages(imagesDir, imagesDir, parentImagesDir, { kind: 'dedupe' });
    await this.attach(imagesDir, linkTo);
    return counts;
  }

  async rebase(imagesDir: string, into: string, linkTo: string | undefined): Promise<PageCounts> {
    const parent = await parentOf(imagesDir);
    await mkdir(into, { recursive: true, mode: 0o700 });
    const counts = await rewriteLevel(imagesDir, into, parent, { kind: 'resolve', levels: 1 });
    if (linkTo !== undefined) await this.attach(into, linkTo);
    return counts;
  }

  async flatten(imagesDir: string, into: string): Promise<PageCounts> {
    await mkdir(into, { recursive: true, mode: 0o700 });
    return rewriteLevel(imagesDir, into, await parentOf(imagesDir), { kind: 'resolve', levels: Infinity });
  }

  chain(imagesDir: string): Promise<string[]> {
    return imageChain(imagesDir);
  }

  async shareFiles(dir: string, parentDir: string, skip: string[]): Promise<void> {
    for (const rel of await walkRelative(dir)) {
      if (skipped(rel, skip)) continue;
      const mine = path.join(dir, rel);
      const theirs = path.join(parentDir, rel);
      const [a, b] = await Promise.all([lstat(mine), lstat(theirs).catch(() => undefined)]);
      if (!a.isFile() || !b?.isFile() || a.size !== b.size || a.size < SHARE_MIN_BYTES) continue;
      if (a.ino === b.ino && a.dev === b.dev) continue;
      if (!(await sameContent(mine, theirs))) continue;
      const tmp = `${mine}.shared`;
      await link(theirs, tmp);
      await rename(tmp, mine).catch(async (err: unknown) => {
        await rm(tmp, { force: true });
        throw err;
      });
    }
  }

  async attach(imagesDir: string, linkTo: string): Promise<void> {
    await symlink(linkTo, path.join(imagesDir, PARENT_LINK));
  }

  async linkFiles(from: string, into: string, skip: string[]): Promise<void> {
    for (const rel of await walkRelative(from)) {
      if (skipped(rel, skip)) continue;
      const st = await lstat(path.join(from, rel));
      if (st.isDirectory()) await mkdir(path.join(into, rel), { recursive: true, mode: st.mode & 0o7777 });
      else if (st.isFile()) await link(path.join(from, rel), path.join(into, rel));
    }
  }

  async ownBytes(dir: string, parentDir: string | undefined): Promise<number> {
    let bytes = 0;
    for (const rel of await walkRelative(dir)) {
      const st = await lstat(path.join(dir, rel));
      if (!st.isFile()) continue;
      if (parentDir !== undefined) {
        const theirs = await lstat(path.join(parentDir, rel)).catch(() => undefined);
        if (theirs?.ino === st.ino && theirs.dev === st.dev) continue;
      }
      bytes += st.size;
    }
    return bytes;
  }
}

/** A path that is one of `skip`, or below one. */
function skipped(rel: string, skip: string[]): boolean {
  return skip.some((s) => rel === s || rel.startsWith(`${s}/`));
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const left = createReadStream(a, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]();
  const right = createReadStream(b, { highWaterMark: 1 << 20 });
  let pending: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of right) {
      let theirs = chunk as Buffer;
      while (theirs.length > 0) {
        if (pending.length === 0) {
          const next = await left.next();
          if (next.done) return false;
          pending = next.value as Buffer;
        }
        const n = Math.min(pending.length, theirs.length);
        if (pending.compare(theirs, 0, n, 0, n) !== 0) return false;
        pending = pending.subarray(n);
        theirs = theirs.subarray(n);
      }
    }
    return pending.length === 0 && (await left.next()).done === true;
  } finally {
    await left.return?.();
    right.destroy();
  }
}
