import { createWriteStream, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { stampOf } from './file-stamps.js';

/** The header fields cryo sets; tar-stream fills in the rest. */
export type TarHeader = Partial<tar.Header> & { name: string };

/** Every path below `root`, relative, parents before children, in a stable order. */
export async function walkRelative(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    // A directory that a running workload removed meanwhile is left out, as its files are.
    const entries = rel
      ? ((await readdir(path.join(root, rel), { withFileTypes: true }).catch(gone)) ?? [])
      : await readdir(root, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      out.push(child);
      if (entry.isDirectory()) await walk(child);
    }
  };
  await walk('');
  return out;
}

/**
 * Writes an uncompressed tar of `relPaths` (relative to `root`) to `file`, keeping mode, owner and mtime.
 * Regular files, directories and symlinks are stored; device nodes, fifos and sockets are left out.
 * With `stamps`, each stored path's stamp (file-stamps.ts) is recorded as it is read; a file is fsynced first, so
 * that a later write through a shared mapping faults and moves its ctime.
 */
export async function writeTar(
  root: string,
  relPaths: string[],
  file: string,
  stamps?: Map<string, string>,
): Promise<number> {
  const pack = tar.pack();
  const done = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(file, { mode: 0o600 }));
  let count = 0;
  try {
    for (const rel of relPaths) {
      const full = path.join(root, rel);
      // A running workload may delete what was listed a moment ago: what is gone is left out.
      const st = await lstat(full, { bigint: stamps !== undefined }).catch(gone);
      if (!st) continue;
      const header = {
        name: rel,
        mode: Number(st.mode) & 0o7777,
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtime: st.mtime,
      };
      if (st.isDirectory()) {
        await addEntry(pack, { ...header, type: 'directory' });
      } else if (st.isSymbolicLink()) {
        const linkname = await readlink(full).catch(gone);
        if (linkname === undefined) continue;
        await addEntry(pack, { ...header, type: 'symlink', linkname });
      } else if (st.isFile()) {
        const stamp = await addFile(pack, header, full, stamps !== undefined);
        if (stamp === null) continue;
        if (stamp !== undefined) stamps?.set(rel, stamp);
        count++;
        continue;
      } else {
        continue;
      }
      if (stamps) stamps.set(rel, stampOf(st as BigIntStats));
      count++;
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  await done;
  return count;
}

/** undefined for a path that no longer exists; any other error stands. */
function gone(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined;
  throw err;
}

function addEntry(pack: tar.Pack, header: TarHeader): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header as tar.Header, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * A regular file as it is when opened: a workload that writes it meanwhile (a leave-running checkpoint) must not
 * fail the pack. It is stored with the size it had then; should it shrink before it is read, the rest is zeros.
 * Resolves with its stamp (when `stamped`), or null when it was gone before it could be opened.
 */
async function addFile(
  pack: tar.Pack,
  header: TarHeader,
  file: string,
  stamped: boolean,
): Promise<string | undefined | null> {
  const handle = await open(file, 'r').catch(gone);
  if (!handle) return null;
  try {
    if (stamped) await handle.sync();
    const st = await handle.stat({ bigint: true });
    const size = Number(st.size);
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ ...header, type: 'file', size } as tar.Header, (err) =>
        err ? reject(err) : resolve(),
      );
      pipeline(Readable.from(bytesOf(handle, size)), sink).catch(reject);
    });
    return stamped ? stampOf(st) : undefined;
  } finally {
    await handle.close();
  }
}

async function* bytesOf(handle: FileHandle, size: number): AsyncGenerator<Buffer> {
  let position = 0;
  while (position < size) {
    const want = Math.min(READ_CHUNK, size - position);
    const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(want), 0, want, position);
    if (bytesRead === 0) {
      yield Buffer.alloc(size - position);
      return;
    }
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

const READ_CHUNK = 1 << 20;
