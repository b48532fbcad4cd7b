/** The two zero blocks that end a tar. */
const END_OF_ARCHIVE_BYTES = 1024;
const BLOCK = 512;

/**
 * The bytes one entry takes in a tar written by tar-stream: its header (a pax header first where USTAR's name
 * and prefix fields cannot hold the path, as tar-stream's headers.encode decides), then its body padded to a block.
 */
export function tarEntryBytes(name: string, size: number): number {
  const header = fitsUstar(name) ? BLOCK : BLOCK + padded(paxRecordBytes('path', name)) + BLOCK;
  return header + padded(size);
}

/** The bytes of a whole tar whose entries are `entries` (path and size), in any order. */
export function tarBytes(entries: Iterable<{ name: string; size: number }>): number {
  let total = END_OF_ARCHIVE_BYTES;
  for (const e of entries) total += tarEntryBytes(e.name, e.size);
  return total;
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** USTAR: ASCII, a name of at most 100 bytes after moving leading directories into a prefix of at most 155. */
function fitsUstar(path: string): boolean {
  if (Buffer.byteLength(path) !== path.length) return false;
  let name = path;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return false;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  return name.length <= 100 && prefix.length <= 155;
}

/** A pax record is "<length> <key>=<value>\n", the length counting its own digits. */
function paxRecordBytes(key: string, value: string): number {
  const len = Buffer.byteLength(` ${key}=${value}\n`);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return len + digits;
}
