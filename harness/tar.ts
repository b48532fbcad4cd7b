import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';

export interface TarItem {
  header: Partial<tar.Header> & { name: string };
  body: Buffer;
}

/** All entries of an uncompressed tar, in order. */
export async function readTar(archive: Buffer): Promise<TarItem[]> {
  const extract = tar.extract();
  const items: TarItem[] = [];
  const feed = Readable.from([archive]);
  feed.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    items.push({ header: { ...entry.header }, body: Buffer.concat(chunks) });
  }
  return items;
}

/** An uncompressed tar of `items`, written as given (no checks: tests craft bad archives with it). */
export async function writeTar(items: TarItem[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const item of items) {
    await new Promise<void>((resolve, reject) => {
      const hasBody = item.header.type === undefined || item.header.type === 'file';
      pack.entry(
        { ...item.header, ...(hasBody ? { size: item.body.length } : {}) } as tar.Header,
        hasBody ? item.body : Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
