import { readFile } from 'node:fs/promises';

/** CRIU's image magics (criu/include/magic.h): every image starts with the common one, then its own. */
export const IMG_COMMON_MAGIC = 0x54564319;
const PAGEMAP_MAGIC = 0x56084025;

/** Pagemap entry flags (criu/include/pagemap.h). */
export const PageFlag = { PARENT: 1, LAZY: 2, PRESENT: 4 } as const;

export const PAGE_SIZE = 4096;

/** One run of pages in a process's address space: in this image's pages file (PRESENT), or in the parent's. */
export interface PagemapEntry {
  vaddr: number;
  nrPages: number;
  flags: number;
}

export interface PagemapImage {
  pagesId: number;
  entries: PagemapEntry[];
}

/** `pagemap-<pid>.img` (a process's private memory), not shared memory's `pagemap-shmem-*`. */
export const PROCESS_PAGEMAP = /^pagemap-(\d+)\.img$/;
export const pagesFileName = (pagesId: number): string => `pages-${pagesId}.img`;

export function parsePagemap(buf: Buffer, name = 'pagemap'): PagemapImage {
  const records = imageRecords(buf, PAGEMAP_MAGIC, name, 'pagemap');
  const [head, ...rest] = records;
  if (!head) throw new Error(`${name} has no head`);
  const pagesId = varintFields(head, name).get(1) ?? 0;
  const entries = rest.map((r) => {
    const f = varintFields(r, name);
    const nrPages = f.get(5) ?? f.get(2) ?? 0;
    const flags = f.get(4) ?? (f.get(3) ? PageFlag.PARENT : PageFlag.PRESENT);
    return { vaddr: f.get(1) ?? 0, nrPages, flags };
  });
  return { pagesId, entries };
}

export async function readPagemap(file: string): Promise<PagemapImage> {
  return parsePagemap(await readFile(file), file);
}

/** Written as CRIU 4 writes it: compat_nr_pages 0, the count in nr_pages (field 5). */
export function serializePagemap(image: PagemapImage): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(8);
  header.writeUInt32LE(IMG_COMMON_MAGIC, 0);
  header.writeUInt32LE(PAGEMAP_MAGIC, 4);
  parts.push(header);
  const record = (bytes: number[]): void => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(bytes.length, 0);
    parts.push(len, Buffer.from(bytes));
  };
  record([0x08, ...varint(image.pagesId)]);
  for (const e of image.entries)
    record([0x08, ...varint(e.vaddr), 0x10, 0x00, 0x20, ...varint(e.flags), 0x28, ...varint(e.nrPages)]);
  return Buffer.concat(parts);
}

/** The records of a CRIU protobuf image (after its two magics, each a u32 length and a message). */
export function imageRecords(buf: Buffer, magic: number, name: string, kind: string): Buffer[] {
  if (buf.length < 8 || buf.readUInt32LE(0) !== IMG_COMMON_MAGIC || buf.readUInt32LE(4) !== magic)
    throw new Error(`${name} is not a CRIU ${kind} image`);
  let at = 8;
  const records: Buffer[] = [];
  while (at < buf.length) {
    if (at + 4 > buf.length) throw new Error(`${name} ends inside a record length`);
    const len = buf.readUInt32LE(at);
    at += 4;
    if (at + len > buf.length) throw new Error(`${name} ends inside a record`);
    records.push(buf.subarray(at, at + len));
    at += len;
  }
  return records;
}

/** The varint fields of a protobuf message that holds nothing else (pagemap and ids records); below 2^53. */
export function varintFields(buf: Buffer, name: string): Map<number, number> {
  const out = new Map<number, number>();
  let at = 0;
  const read = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= buf.length) break;
      const b = buf[at++]!;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return value;
    }
    throw new Error(`${name} has a malformed varint`);
  };
  while (at < buf.length) {
    const key = read();
    if (key % 8 !== 0) throw new Error(`${name} has a field of wire type ${key % 8}, not a varint`);
    out.set(Math.floor(key / 8), read());
  }
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
