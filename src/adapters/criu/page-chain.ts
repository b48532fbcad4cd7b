import { readSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { link, open, readdir, readlink, realpath, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  PAGE_SIZE,
  PROCESS_PAGEMAP,
  PageFlag,
  pagesFileName,
  readPagemap,
  serializePagemap,
  type PagemapEntry,
} from './pagemap-image.js';
import type { PageCounts } from '../../services/ports/image-chain.js';

/** CRIU's name for the link from an images directory to its parent's (criu/image.c, open_parent). */
export const PARENT_LINK = 'parent';

/** Pages compared or copied per read: 1 MiB. */
const CHUNK_PAGES = 256;
/** Pages compared at once before page by page: 64 KiB. */
const BLOCK_PAGES = 16;

/**
 * What to make of one level's images:
 * - dedupe: a full dump's pages equal to the parent's page at the same address become PE_PARENT entries;
 * - resolve: PE_PARENT pages found within `levels` levels up are copied in (a rebase onto a farther parent, or,
 *   with Infinity, a full set of images with no parent).
 */
export type RewriteMode = { kind: 'dedupe' } | { kind: 'resolve'; levels: number };

/**
 * Rewrites the private-memory pagemaps of the images in `src` into `dst` (which may be `src`), against the images
 * directory `parent` (whose own parent links are followed). Other images are the caller's.
 */
export async function rewritePages(
  src: string,
  dst: string,
  parent: string | undefined,
  mode: RewriteMode,
): Promise<PageCounts> {
  const sum: PageCounts = { total: 0, stored: 0 };
  for (const name of (await readdir(src)).filter((n) => PROCESS_PAGEMAP.test(n)).sort()) {
    // A parent's content is what its restore would see: through all its own parents.
    const levels = mode.kind === 'dedupe' ? Infinity : mode.levels;
    const view = parent === undefined ? undefined : await LevelPages.open(parent, name, levels);
    try {
      const counts = await rewriteProcess(src, dst, name, view, mode);
      sum.total += counts.total;
      sum.stored += counts.stored;
    } finally {
      await view?.close();
    }
  }
  return sum;
}

/**
 * The images directories a level's restore reads: itself, then its parent links, nearest first. A link that
 * loops or leads nowhere is an error (a broken chain).
 */
export async function imageChain(imagesDir: string): Promise<string[]> {
  const chain: string[] = [];
  let dir: string | undefined = await realpath(imagesDir);
  while (dir !== undefined) {
    if (chain.includes(dir)) throw new Error(`the parent links of ${imagesDir} loop at ${dir}`);
    chain.push(dir);
    dir = await parentOf(dir);
  }
  return chain;
}

/** The real path of a level's parent images directory, or undefined for a full level. */
export async function parentOf(imagesDir: string): Promise<string | undefined> {
  // The link is relative to where the directory really is, as CRIU resolves it (openat on the directory).
  const real = await realpath(imagesDir);
  const target = await readlink(path.join(real, PARENT_LINK)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (target === undefined) return undefined;
  return realpath(path.resolve(real, target));
}

/**
 * A new images directory `dst` for the level at `src`, every image hard-linked but the private-memory pagemaps
 * and pages, which are rewritten against `parent` by `mode`. The caller adds the parent link it wants.
 */
export async function rewriteLevel(
  src: string,
  dst: string,
  parent: string | undefined,
  mode: RewriteMode,
): Promise<PageCounts> {
  const rewritten = new Set<string>();
  for (const name of (await readdir(src)).filter((n) => PROCESS_PAGEMAP.test(n))) {
    rewritten.add(name);
    rewritten.add(pagesFileName((await readPagemap(path.join(src, name))).pagesId));
  }
  for (const entry of await readdir(src, { withFileTypes: true })) {
    if (!entry.isFile() || rewritten.has(entry.name)) continue;
    await link(path.join(src, entry.name), path.join(dst, entry.name));
  }
  return rewritePages(src, dst, parent, mode);
}

/** One process's pages as seen from one level: its own, and below them its parents'. */
class LevelPages {
  private constructor(
    private readonly entries: PagemapEntry[],
    /** Offset in the pages file of each entry's first page, for PRESENT entries. */
    private readonly offsets: number[],
    private readonly pages: FileHandle | undefined,
    private readonly parent: LevelPages | undefined,
  ) {}

  static async open(dir: string, pagemap: string, levels: number): Promise<LevelPages | undefined> {
    const image = await readPagemap(path.join(dir, pagemap)).catch((err: NodeJS.ErrnoException) => {
      // A process the parent did not have: none of its pages can be there.
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!image) return undefined;
    const offsets: number[] = [];
    let at = 0;
    for (const e of image.entries) {
      offsets.push(at);
      if (e.flags & PageFlag.PRESENT) at += e.nrPages * PAGE_SIZE;
    }
    const pages = at > 0 ? await open(path.join(dir, pagesFileName(image.pagesId)), 'r') : undefined;
    let parent: LevelPages | undefined;
    try {
      const up = levels > 1 ? await parentOf(dir) : undefined;
      parent = up === undefined ? undefined : await LevelPages.open(up, pagemap, levels - 1);
    } catch (err) {
      await pages?.close();
      throw err;
    }
    return new LevelPages(image.entries, offsets, pages, parent);
  }

  async close(): Promise<void> {
    await this.pages?.close();
    await this.parent?.close();
  }

  /** Reads the pages at [vaddr, vaddr + n pages) into `out`; `found[i]` is set for each page this view has. */
  async read(vaddr: number, n: number, out: Buffer, found: Uint8Array): Promise<void> {
    const end = vaddr + n * PAGE_SIZE;
    for (let i = this.first(vaddr); i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.vaddr >= end) break;
      const from = Math.max(e.vaddr, vaddr);
      const to = Math.min(e.vaddr + e.nrPages * PAGE_SIZE, end);
      if (to <= from) continue;
      const outAt = from - vaddr;
      if (e.flags & PageFlag.PRESENT) {
        const fileAt = this.offsets[i]! + (from - e.vaddr);
        readFully(this.pages!, out, outAt, to - from, fileAt);
        found.fill(1, outAt / PAGE_SIZE, (to - vaddr) / PAGE_SIZE);
      } else if (e.flags & PageFlag.PARENT && this.parent) {
        const sub = found.subarray(outAt / PAGE_SIZE, (to - vaddr) / PAGE_SIZE);
        await this.parent.read(from, (to - from) / PAGE_SIZE, out.subarray(outAt, to - vaddr), sub);
      }
    }
  }

  /** The first entry that ends after vaddr (entries are sorted and do not overlap). */
  private first(vaddr: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entries[mid]!;
      if (e.vaddr + e.nrPages * PAGE_SIZE <= vaddr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * A read of page-cache-warm image bytes, synchronous: a chain's parents are read in many small pieces, and a
 * thread-pool round trip for each costs more than the copy. Callers yield between chunks.
 */
function readFully(fh: FileHandle, out: Buffer, at: number, len: number, pos: number): void {
  let done = 0;
  while (done < len) {
    const bytesRead = readSync(fh.fd, out, at + done, len - done, pos + done);
    if (bytesRead === 0) throw new Error('a pages image is shorter than its pagemap says');
    done += bytesRead;
  }
}

/** Runs of pages in address order, merged while contiguous and alike, with the PRESENT ones' bytes. */
class EntryWriter {
  readonly entries: PagemapEntry[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Set at each entry of the input: CRIU's entries end at mappings' bounds, and so do the rewritten ones. */
  private split = true;
  stored = 0;

  constructor(private readonly pages: FileHandle) {}

  add(vaddr: number, flags: number, bytes?: Buffer): void {
    const last = this.entries.at(-1);
    if (!this.split && last?.flags === flags && last.vaddr + last.nrPages * PAGE_SIZE === vaddr)
      last.nrPages++;
    else this.entries.push({ vaddr, nrPages: 1, flags });
    this.split = false;
    if (bytes) {
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
      this.stored++;
    }
  }

  /** An entry kept whole (neither in this level's pages nor resolvable here). */
  keep(e: PagemapEntry): void {
    this.entries.push({ ...e });
    this.split = true;
  }

  /** The next page starts a new entry. */
  boundary(): void {
    this.split = true;
  }

  /** Writes the pending pages once they fill a chunk (`all`: whatever there is). */
  async flush(all = true): Promise<void> {
    if (this.pendingBytes === 0 || (!all && this.pendingBytes < CHUNK_PAGES * PAGE_SIZE)) return;
    await this.pages.write(Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }
}

async function rewriteProcess(
  src: string,
  dst: string,
  name: string,
  view: LevelPages | undefined,
  mode: RewriteMode,
): Promise<PageCounts> {
  const image = await readPagemap(path.join(src, name));
  const pagesName = pagesFileName(image.pagesId);
  const tmpPages = path.join(dst, `.${pagesName}.tmp`);
  const tmpMap = path.join(dst, `.${name}.tmp`);
  const input = await open(path.join(src, pagesName), 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  const output = await open(tmpPages, 'w', 0o600);
  let pages = 0;
  try {
    const writer = new EntryWriter(output);
    let inputAt = 0;
    const own = Buffer.alloc(CHUNK_PAGES * PAGE_SIZE);
    const theirs = Buffer.alloc(CHUNK_PAGES * PAGE_SIZE);
    const found = new Uint8Array(CHUNK_PAGES);
    for (const e of image.entries) {
      pages += e.nrPages;
      const present = (e.flags & PageFlag.PRESENT) !== 0;
      const inParent = !present && (e.flags & PageFlag.PARENT) !== 0;
      const compare = present && mode.kind === 'dedupe' && view !== undefined;
      const resolve = inParent && mode.kind === 'resolve' && view !== undefined;
      if (!present && !resolve) {
        if (inParent && mode.kind === 'resolve' && mode.levels === Infinity)
          throw new Error(`${name}: pages at 0x${e.vaddr.toString(16)} are in a parent that is gone`);
        writer.keep(e);
        continue;
      }
      writer.boundary();
      for (let done = 0; done < e.nrPages; done += CHUNK_PAGES) {
        const n = Math.min(CHUNK_PAGES, e.nrPages - done);
        const vaddr = e.vaddr + done * PAGE_SIZE;
        if (present) {
          if (!input) throw new Error(`${name}: its pages image ${pagesName} is missing`);
          readFully(input, own, 0, n * PAGE_SIZE, inputAt);
          inputAt += n * PAGE_SIZE;
        }
        found.fill(0);
        if (compare || resolve) await view.read(vaddr, n, theirs, found);
        await yieldToLoop();
        for (let i = 0; i < n; i++) {
          const at = i * PAGE_SIZE;
          const page = vaddr + at;
          // Equal blocks are found with one comparison: most of a level's pages are its parent's.
          if (compare && i % BLOCK_PAGES === 0 && i + BLOCK_PAGES <= n) {
            const end = at + BLOCK_PAGES * PAGE_SIZE;
            if (
              found.subarray(i, i + BLOCK_PAGES).every((f) => f === 1) &&
              own.compare(theirs, at, end, at, end) === 0
            ) {
              for (let k = 0; k < BLOCK_PAGES; k++) writer.add(page + k * PAGE_SIZE, PageFlag.PARENT);
              i += BLOCK_PAGES - 1;
              continue;
            }
          }
          if (present) {
            const same =
              compare && found[i] === 1 && own.compare(theirs, at, at + PAGE_SIZE, at, at + PAGE_SIZE) === 0;
            if (same) writer.add(page, PageFlag.PARENT);
            else writer.add(page, e.flags, Buffer.from(own.subarray(at, at + PAGE_SIZE)));
          } else if (found[i] === 1) {
            writer.add(page, PageFlag.PRESENT, Buffer.from(theirs.subarray(at, at + PAGE_SIZE)));
          } else if (mode.kind === 'resolve' && mode.levels === Infinity) {
            throw new Error(`${name}: the page at 0x${page.toString(16)} is in no level of its chain`);
          } else {
            writer.add(page, e.flags);
          }
        }
        await writer.flush(false);
      }
    }
    await writer.flush();
    await output.sync();
    await output.close();
    const map = await open(tmpMap, 'w', 0o600);
    try {
      await map.write(serializePagemap({ pagesId: image.pagesId, entries: writer.entries }));
      await map.sync();
    } finally {
      await map.close();
    }
    await rename(tmpPages, path.join(dst, pagesName));
    await rename(tmpMap, path.join(dst, name));
    return { total: pages, stored: writer.stored };
  } catch (err) {
    await output.close().catch(() => undefined);
    await rm(tmpPages, { force: true });
    await rm(tmpMap, { force: true });
    throw err;
  } finally {
    await input?.close();
  }
}

/** Bytes of the regular files directly in `dir` (an images directory has no subdirectories). */
export async function filesBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }))
    if (entry.isFile()) bytes += (await stat(path.join(dir, entry.name))).size;
  return bytes;
}
