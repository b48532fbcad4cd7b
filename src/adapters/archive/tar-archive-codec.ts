import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { safeArchivePath, symlinkStaysInside } from '../../domain/archive-path.js';
import type { Compression } from '../../domain/checkpoint.js';
import { AppError, ArchiveInvalidError } from '../../domain/errors/index.js';
import { ARCHIVE_FORMAT_VERSION, CRYO_MANIFEST } from '../../domain/layout.js';
import { ManifestSchema, type Manifest, type ManifestEntry } from '../../domain/manifest.js';
import type { ArchiveCodec, ExtractLimits, ForeignPack } from '../../services/ports/archive-codec.js';
import { compress, decompress, detectCompression, peek } from './compression.js';
import { FileWrites } from './file-writes.js';
import { walkRelative, type TarHeader } from './tar-pack.js';
import { tarBytes } from './tar-size.js';
import { CHUNK, hashFile, readAll, writeHashed } from './entry-io.js';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ENTRIES = 200_000;
const HINT_EXPORT = 'import only archives made by GET /v1/checkpoints/{id}/archive, unmodified and complete';

/**
 * Checkpoint archives as tar streams (tar-stream), optionally gzip- or zstd-compressed. Over 300 lines as one
 * mechanism: the export and the import are the two directions of the same format and its checks.
 */
export class TarArchiveCodec implements ArchiveCodec {
  async describe(dir: string, known: ManifestEntry[] = []): Promise<ManifestEntry[]> {
    const done = new Map(known.map((e) => [e.name, e]));
    const rel = (await walkRelative(dir)).filter((p) => p !== CRYO_MANIFEST);
    const stats = await inBatches(rel, (p) => lstat(path.join(dir, p)));
    const files = rel.filter((_, i) => stats[i]!.isFile());
    // Top-level files first (they are small and tell a reader what follows), then the directories' files.
    files.sort((a, b) => Number(a.includes('/')) - Number(b.includes('/')) || (a < b ? -1 : a > b ? 1 : 0));
    // A checkpoint is mostly small files: one at a time, each costs more in round trips than in hashing.
    const hashes = await inBatches(files, async (name) => done.get(name) ?? hashFile(path.join(dir, name)));
    return files.map((name, i) => ({ name, size: hashes[i]!.size, sha256: hashes[i]!.sha256 }));
  }

  packedSize(manifest: Manifest): number {
    const dirs = new Set<string>();
    const headers = [{ name: CRYO_MANIFEST, size: manifestBody(manifest).length }];
    for (const e of manifest.entries) {
      for (const d of newParents(e.name, dirs)) headers.push({ name: `${d}/`, size: 0 });
      headers.push({ name: e.name, size: e.size });
    }
    return tarBytes(headers);
  }

  pack(dir: string, manifest: Manifest, kind: Compression, foreign?: ForeignPack): Readable {
    const pack = tar.pack();
    const extra = foreign?.extra ?? [];
    const fill = async () => {
      const mtime = new Date(manifest.createdAt);
      const body = manifestBody(manifest);
      if (!foreign) await entry(pack, { name: CRYO_MANIFEST, size: body.length, mode: 0o600, mtime }, body);
      const dirs = new Set<string>();
      const { entries } = manifest;
      // Small files are read a batch ahead, so that the stream never waits for one file's open and read.
      const readSmall = (from: number) =>
        Promise.all(
          entries
            .slice(from, from + PARALLEL_FILES)
            .map((e) => (e.size <= CHUNK ? readFile(path.join(dir, e.name)) : undefined)),
        );
      let batch = readSmall(0);
      for (let at = 0; at < entries.length; at += PARALLEL_FILES) {
        const bodies = await batch;
        batch = readSmall(at + PARALLEL_FILES);
        batch.catch(() => undefined);
        for (const [i, body] of bodies.entries()) {
          const e = entries[at + i]!;
          for (const d of newParents(e.name, dirs))
            await entry(pack, { name: `${d}/`, type: 'directory', mode: 0o700, mtime });
          if (body && body.length !== e.size)
            throw new Error(
              `${e.name} is ${body.length} bytes, not the ${e.size} that ${CRYO_MANIFEST} says`,
            );
          await entry(
            pack,
            { name: e.name, size: e.size, mode: 0o600, mtime },
            body ?? createReadStream(path.join(dir, e.name), { highWaterMark: CHUNK }),
          );
        }
      }
      for (const e of extra) {
        for (const d of newParents(e.name, dirs))
          await entry(pack, { name: `${d}/`, type: 'directory', mode: 0o700, mtime });
        await entry(pack, { name: e.name, size: e.body.length, mode: 0o600, mtime }, e.body);
      }
      pack.finalize();
    };
    fill().catch((err: Error) => pack.destroy(err));
    return compress(pack as unknown as Readable, kind);
  }

  async extract(input: Readable, dir: string, limits: ExtractLimits): Promise<Manifest | undefined> {
    const { head, stream } = await peek(input, 4);
    const kind = detectCompression(head);
    const extract = tar.extract();
    const feeding = pipeline(decompress(stream, kind), extract).catch((err: Error) => {
      extract.destroy(err);
    });
    try {
      const manifest = await this.verify(extract, dir, limits);
      await feeding;
      return manifest;
    } catch (err) {
      stream.destroy();
      extract.destroy();
      throw toArchiveError(err);
    }
  }

  async countFiles(tarFile: string): Promise<number> {
    const extract = tar.extract();
    const feeding = pipeline(createReadStream(tarFile), extract).catch((err: Error) => extract.destroy(err));
    let count = 0;
    for await (const item of extract) {
      if (item.header.type === 'file' || item.header.type === 'contiguous-file') count++;
      item.resume();
    }
    await feeding;
    return count;
  }

  private async verify(
    extract: tar.Extract,
    dir: string,
    limits: ExtractLimits,
  ): Promise<Manifest | undefined> {
    // Small entries are written while the stream goes on; each is checked before its write starts.
    const writes = new FileWrites();
    const made = new Set<string>();
    const makeDir = async (d: string) => {
      if (made.has(d)) return;
      await mkdir(d, { recursive: true, mode: 0o700 });
      made.add(d);
    };
    try {
      return await this.verifyEntries(extract, dir, limits, writes, makeDir);
    } finally {
      // Never leaves a write behind the staging directory's removal; a failure of its own is already thrown.
      await writes.settle().catch(() => undefined);
    }
  }

  private async verifyEntries(
    extract: tar.Extract,
    dir: string,
    limits: ExtractLimits,
    writes: FileWrites,
    makeDir: (d: string) => Promise<void>,
  ): Promise<Manifest | undefined> {
    let manifest: Manifest | undefined;
    let foreign = false;
    let expected = new Map<string, ManifestEntry>();
    const seen = new Set<string>();
    const links = new Set<string>();
    let total = 0;
    let count = 0;
    for await (const item of extract) {
      const header = item.header;
      count++;
      if (count > MAX_ENTRIES) throw invalid(`more than ${MAX_ENTRIES} entries`);
      const name = safeArchivePath(header.name);
      if (!name)
        throw invalid(
          `entry ${JSON.stringify(header.name)} has an absolute path or "..", or a control character`,
        );
      if (links.size > 0 && belowAny(name, links)) throw invalid(`entry "${name}" lies below a link`);
      if (header.type !== 'directory') total += header.size ?? 0;
      if (total > limits.maxBytes) {
        throw new ArchiveInvalidError(
          `the archive holds more than the allowed ${limits.maxBytes} bytes`,
          'raise CRYO_MAX_IMPORT_BYTES, or import a smaller checkpoint',
          413,
        );
      }

      if (!manifest && !foreign && (name !== CRYO_MANIFEST || header.type !== 'file') && limits.foreign)
        foreign = true;
      // cryo's archive with its manifest moved is neither cryo's nor Podman's.
      if (foreign && name === CRYO_MANIFEST)
        throw invalid(`${CRYO_MANIFEST} is not the first entry, as it must be in cryo's archives`);
      if (!manifest && !foreign) {
        if (name !== CRYO_MANIFEST || header.type !== 'file') {
          throw invalid(`the first entry is "${name}", not ${CRYO_MANIFEST}`);
        }
        if ((header.size ?? 0) > MAX_MANIFEST_BYTES) throw invalid(`${CRYO_MANIFEST} is too large`);
        const raw = await readAll(item as unknown as AsyncIterable<Buffer>);
        manifest = parseManifest(raw);
        if (manifest.formatVersion > ARCHIVE_FORMAT_VERSION) {
          throw invalid(
            `archive format ${manifest.formatVersion} is newer than this cryo reads (${ARCHIVE_FORMAT_VERSION})`,
          );
        }
        expected = new Map(manifest.entries.map((e) => [e.name, e]));
        limits.onManifest?.(manifest);
        await writeFile(path.join(dir, CRYO_MANIFEST), raw, { mode: 0o600, flag: 'wx' });
        continue;
      }

      const target = path.join(dir, name);
      switch (header.type) {
        case 'directory':
          await makeDir(target);
          item.resume();
          break;
        case 'file':
        case 'contiguous-file': {
          if (seen.has(name)) throw invalid(`entry "${name}" appears twice`);
          if (foreign) {
            await makeDir(path.dirname(target));
            const got = await writeHashed(item as unknown as AsyncIterable<Buffer>, target);
            if (got.size !== header.size) throw invalid(`entry "${name}" is truncated`);
            seen.add(name);
            break;
          }
          const want = expected.get(name);
          if (!want) throw invalid(`entry "${name}" is not listed in ${CRYO_MANIFEST}`);
          if (header.size !== want.size)
            throw invalid(`entry "${name}" has ${header.size} bytes, ${CRYO_MANIFEST} says ${want.size}`);
          await makeDir(path.dirname(target));
          const body =
            want.size <= CHUNK ? await readAll(item as unknown as AsyncIterable<Buffer>) : undefined;
          const got = body
            ? { size: body.length, sha256: createHash('sha256').update(body).digest('hex') }
            : await writeHashed(item as unknown as AsyncIterable<Buffer>, target);
          if (got.size !== want.size)
            throw invalid(`entry "${name}" is truncated (${got.size} of ${want.size} bytes)`);
          if (got.sha256 !== want.sha256)
            throw invalid(`entry "${name}" does not match its sha256 in ${CRYO_MANIFEST}`);
          // O_EXCL, as writeHashed: an entry never overwrites, or writes through, something already there.
          if (body) await writes.add(writeFile(target, body, { mode: 0o600, flag: 'wx' }));
          seen.add(name);
          break;
        }
        case 'symlink': {
          const linkname = header.linkname ?? '';
          if (!symlinkStaysInside(name, linkname))
            throw invalid(`symlink "${name}" points outside the archive (${linkname})`);
          await makeDir(path.dirname(target));
          await symlink(linkname, target);
          links.add(name);
          item.resume();
          break;
        }
        case 'link': {
          const linkTarget = safeArchivePath(header.linkname ?? '');
          if (!linkTarget || !seen.has(linkTarget)) {
            throw invalid(
              `hard link "${name}" points outside the archive or at nothing before it (${header.linkname})`,
            );
          }
          await makeDir(path.dirname(target));
          await writes.settle();
          await link(path.join(dir, linkTarget), target);
          links.add(name);
          item.resume();
          break;
        }
        default:
          throw invalid(`entry "${name}" is a ${header.type}; device nodes, fifos and the like are refused`);
      }
    }
    if (foreign) {
      await writes.settle();
      return undefined;
    }
    if (!manifest) throw invalid(`the archive is empty or truncated: no ${CRYO_MANIFEST}`);
    await writes.settle();
    const missing = manifest.entries.filter((e) => !seen.has(e.name)).map((e) => e.name);
    if (missing.length > 0) {
      throw invalid(
        `the archive is truncated: ${missing.length} listed entries are missing (${missing.slice(0, 3).join(', ')})`,
      );
    }
    return manifest;
  }
}

/** Whether a directory above `name` is one of `links`: one look-up per path component, whatever their number. */
function belowAny(name: string, links: Set<string>): boolean {
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1))
    if (links.has(name.slice(0, i))) return true;
  return false;
}

function manifestBody(manifest: Manifest): Buffer {
  return Buffer.from(JSON.stringify(manifest, null, 2));
}

/** The directories above `name` that `dirs` lacks, outermost first; they are added to `dirs`. */
function newParents(name: string, dirs: Set<string>): string[] {
  const parts = name.split('/');
  const added: string[] = [];
  for (let p = 1; p < parts.length; p++) {
    const d = parts.slice(0, p).join('/');
    if (!dirs.has(d)) {
      dirs.add(d);
      added.push(d);
    }
  }
  return added;
}

function invalid(message: string): ArchiveInvalidError {
  return new ArchiveInvalidError(message, HINT_EXPORT);
}

function toArchiveError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const message = (err as Error).message ?? String(err);
  return new ArchiveInvalidError(
    `the archive cannot be read: ${message}`,
    `${HINT_EXPORT}; it may be truncated or corrupt`,
  );
}

function parseManifest(text: Buffer): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch {
    throw invalid(`${CRYO_MANIFEST} is not valid JSON`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success)
    throw invalid(`${CRYO_MANIFEST} is not a cryo manifest: ${parsed.error.issues[0]?.message}`);
  for (const e of parsed.data.entries) {
    if (safeArchivePath(e.name) !== e.name || e.name === CRYO_MANIFEST)
      throw invalid(`${CRYO_MANIFEST} lists an unsafe entry "${e.name}"`);
  }
  return parsed.data;
}

/** How many files an export reads, or hashes, at once. */
const PARALLEL_FILES = 8;

/** `fn` over `items`, PARALLEL_FILES at a time, results in order. */
async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += PARALLEL_FILES)
    out.push(...(await Promise.all(items.slice(i, i + PARALLEL_FILES).map(fn))));
  return out;
}

function entry(pack: tar.Pack, header: TarHeader, body?: Buffer | Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (body === undefined || Buffer.isBuffer(body)) {
      pack.entry(header as tar.Header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(header as tar.Header, (err) => (err ? reject(err) : resolve()));
    pipeline(body, sink).catch(reject);
  });
}
