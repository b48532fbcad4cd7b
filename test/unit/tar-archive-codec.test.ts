import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import test from 'ava';
import { TarArchiveCodec } from '../../src/adapters/archive/tar-archive-codec.js';
import { ArchiveInvalidError } from '../../src/domain/errors/index.js';
import { CRYO_MANIFEST } from '../../src/domain/layout.js';
import { sampleManifest } from '../../harness/manifest.js';
import { readTar, sha256, writeTar } from '../../harness/tar.js';

const codec = new TarArchiveCodec();
const MIB = 1024 * 1024;

/** A checkpoint-like directory: small files, an empty one, and a page image spanning several write batches. */
async function source(t: { teardown: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cryo-codec-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = path.join(root, 'src');
  const files: Record<string, Buffer> = {
    'config.dump': Buffer.from('{"id":"x"}'),
    'checkpoint/inventory.img': randomBytes(100),
    'checkpoint/empty.img': Buffer.alloc(0),
    'checkpoint/pages-1.img': randomBytes(9 * MIB + 12345),
  };
  for (const [name, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), body);
  }
  const manifest = sampleManifest(await codec.describe(dir));
  return { root, dir, files, manifest };
}

test('describe gives every file its size and sha256', async (t) => {
  const { files, manifest } = await source(t);
  t.deepEqual(
    Object.fromEntries(manifest.entries.map((e) => [e.name, { size: e.size, sha256: e.sha256 }])),
    Object.fromEntries(
      Object.entries(files).map(([name, body]) => [name, { size: body.length, sha256: sha256(body) }]),
    ),
  );
});

test('an archive packed from a directory extracts to the same files', async (t) => {
  const { root, dir, files, manifest } = await source(t);
  const archive = await buffer(codec.pack(dir, manifest, 'none'));
  const out = path.join(root, 'out');
  await mkdir(out);
  const got = await codec.extract(Readable.from([archive]), out, { maxBytes: 1e9 });
  t.deepEqual(got, manifest);
  for (const [name, body] of Object.entries(files)) {
    t.true((await readFile(path.join(out, name))).equals(body), name);
  }
});

test('many small entries, and entries at the small-entry bound, round-trip byte for byte', async (t) => {
  const { root, dir, files } = await source(t);
  // Small entries are read ahead and written in the background: every one of them must still land whole.
  for (let i = 0; i < 70; i++) files[`checkpoint/core-${i}.img`] = randomBytes(1 + ((i * 997) % 5000));
  files['checkpoint/at-bound.img'] = randomBytes(MIB);
  files['checkpoint/past-bound.img'] = randomBytes(MIB + 1);
  for (const [name, body] of Object.entries(files)) await writeFile(path.join(dir, name), body);
  const manifest = sampleManifest(await codec.describe(dir));
  const out = path.join(root, 'out');
  await mkdir(out);
  await codec.extract(Readable.from([await buffer(codec.pack(dir, manifest, 'none'))]), out, {
    maxBytes: 1e9,
  });
  for (const [name, body] of Object.entries(files))
    t.true((await readFile(path.join(out, name))).equals(body), name);
});

test('a changed byte in a small entry is refused, and that entry is never written', async (t) => {
  const { root, dir, manifest } = await source(t);
  const items = await readTar(await buffer(codec.pack(dir, manifest, 'none')));
  items.find((i) => i.header.name === 'checkpoint/inventory.img')!.body[3]! ^= 0xff;
  const out = path.join(root, 'out');
  await mkdir(out);
  const err = await t.throwsAsync(
    codec.extract(Readable.from([await writeTar(items)]), out, { maxBytes: 1e9 }),
    { instanceOf: ArchiveInvalidError },
  );
  t.regex(err!.message, /"checkpoint\/inventory\.img" does not match its sha256/);
  t.false((await readdir(path.join(out, 'checkpoint'))).includes('inventory.img'));
});

test('describe takes the entries it is given as they are, and hashes the rest', async (t) => {
  const { dir, manifest } = await source(t);
  const known = { name: 'checkpoint/inventory.img', size: 100, sha256: 'a'.repeat(64) };
  const described = await codec.describe(dir, [known]);
  t.deepEqual(
    described.find((e) => e.name === known.name),
    known,
  );
  t.deepEqual(
    described.filter((e) => e.name !== known.name),
    manifest.entries.filter((e) => e.name !== known.name),
  );
});

test('a changed byte deep inside a large entry is refused as ARCHIVE_INVALID', async (t) => {
  const { root, dir, manifest } = await source(t);
  const items = await readTar(await buffer(codec.pack(dir, manifest, 'none')));
  const pages = items.find((i) => i.header.name === 'checkpoint/pages-1.img')!;
  // Past the first write batches, so that the check cannot be a check of the start only.
  pages.body[pages.body.length - 7]! ^= 0xff;
  const out = path.join(root, 'out');
  await mkdir(out);
  const err = await t.throwsAsync(
    codec.extract(Readable.from([await writeTar(items)]), out, { maxBytes: 1e9 }),
    { instanceOf: ArchiveInvalidError },
  );
  t.regex(err!.message, /"checkpoint\/pages-1\.img" does not match its sha256/);
  t.true((await readdir(out)).includes(CRYO_MANIFEST));
});

test('a stream that ends inside an entry is refused as truncated', async (t) => {
  const { root, dir, manifest } = await source(t);
  const archive = await buffer(codec.pack(dir, manifest, 'none'));
  const out = path.join(root, 'out');
  await mkdir(out);
  await t.throwsAsync(
    codec.extract(Readable.from([archive.subarray(0, archive.length - 5 * MIB)]), out, { maxBytes: 1e9 }),
    { instanceOf: ArchiveInvalidError },
  );
});

test('imports side by side each verify their own entries', async (t) => {
  const { root, dir, files, manifest } = await source(t);
  const archive = await buffer(codec.pack(dir, manifest, 'none'));
  const outs = [0, 1, 2].map((i) => path.join(root, `out-${i}`));
  for (const out of outs) await mkdir(out);
  await Promise.all(outs.map((out) => codec.extract(Readable.from([archive]), out, { maxBytes: 1e9 })));
  for (const out of outs) {
    t.true(
      (await readFile(path.join(out, 'checkpoint/pages-1.img'))).equals(files['checkpoint/pages-1.img']!),
    );
  }
});

test('an entry name with a newline or another control character is refused, and never echoed raw', async (t) => {
  const { root, dir, manifest } = await source(t);
  const items = await readTar(await buffer(codec.pack(dir, manifest, 'none')));
  for (const name of ['checkpoint/forged\n.img', 'checkpoint/esc\u001b[31m.img']) {
    const crafted = [...items, { header: { name, size: 1 }, body: Buffer.from('x') }];
    const out = path.join(root, `out-${items.length}-${name.length}`);
    await mkdir(out);
    const err = await t.throwsAsync(
      codec.extract(Readable.from([await writeTar(crafted)]), out, { maxBytes: 1e9 }),
      { instanceOf: ArchiveInvalidError },
    );
    t.regex(err!.message, /control character/);
    t.false(
      err!.message.includes('\n') || err!.message.includes('\u001b'),
      'the name is quoted, not echoed raw',
    );
    t.false(
      (await readdir(path.join(out, 'checkpoint')).catch(() => [] as string[])).some(
        (f) => f.includes('forged') || f.includes('esc'),
      ),
    );
  }
});

test('packedSize is the exact length of the uncompressed archive, long and non-ASCII paths included', async (t) => {
  const { dir } = await source(t);
  const deep = `volumes/${'v'.repeat(90)}/${'w'.repeat(90)}/${'x'.repeat(99)}.tar`;
  const unsplittable = `operators/${'y'.repeat(120)}.json`;
  const extra: Record<string, Buffer> = {
    [deep]: randomBytes(511),
    [unsplittable]: randomBytes(512),
    'rootfs-diff/caf\u00e9.txt': randomBytes(513),
    [`checkpoint/${'z'.repeat(99)}`]: Buffer.alloc(0),
  };
  for (const [name, body] of Object.entries(extra)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), body);
  }
  const manifest = sampleManifest(await codec.describe(dir));
  const archive = await buffer(codec.pack(dir, manifest, 'none'));
  t.is(codec.packedSize(manifest), archive.length);
  t.is(
    codec.packedSize(sampleManifest([])),
    (await buffer(codec.pack(dir, sampleManifest([]), 'none'))).length,
  );
});
