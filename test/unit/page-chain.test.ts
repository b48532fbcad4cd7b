import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ContentImageChain } from '../../src/adapters/chain/content-image-chain.js';
import {
  PAGE_SIZE,
  PageFlag,
  parsePagemap,
  readPagemap,
  serializePagemap,
  type PagemapEntry,
} from '../../src/adapters/criu/pagemap-image.js';

// The head and first two entries of a pagemap CRIU 4.2.1 wrote for a Python process (compat_nr_pages 0, the count
// in nr_pages, both PRESENT).
const REAL = Buffer.from(
  '19435654254008560200000008010e000000088080b7dbf2bd151000200428010e0000000880c0b7dbf2bd15100020042802',
  'hex',
);

test('a pagemap CRIU wrote reads back, and writes back the same bytes', (t) => {
  const image = parsePagemap(REAL);
  t.is(image.pagesId, 1);
  t.deepEqual(
    image.entries.map((e) => [e.nrPages, e.flags]),
    [
      [1, PageFlag.PRESENT],
      [2, PageFlag.PRESENT],
    ],
  );
  t.is(image.entries[1]!.vaddr - image.entries[0]!.vaddr, 2 * PAGE_SIZE);
  t.deepEqual(serializePagemap(image), REAL);
});

test('a pagemap that is not one, or is cut short, is an error', (t) => {
  t.throws(() => parsePagemap(Buffer.from('not a pagemap at all')), { message: /not a CRIU pagemap/ });
  t.throws(() => parsePagemap(REAL.subarray(0, REAL.length - 2)), { message: /ends inside a record/ });
  const wrongWire = Buffer.concat([REAL.subarray(0, 8), Buffer.from('0200000009ff', 'hex')]);
  t.throws(() => parsePagemap(wrongWire), { message: /wire type/ });
});

const BASE = 0x7f0000000000;

/** An images directory with one process (pid 1): `entries`, and the PRESENT pages' bytes in order. */
async function level(
  dir: string,
  entries: PagemapEntry[],
  pages: Buffer[],
  parent?: string,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'pagemap-1.img'), serializePagemap({ pagesId: 1, entries }));
  await writeFile(path.join(dir, 'pages-1.img'), Buffer.concat(pages));
  await writeFile(path.join(dir, 'core-1.img'), 'core');
  if (parent) await symlink(parent, path.join(dir, 'parent'));
  return dir;
}

const page = () => randomBytes(PAGE_SIZE);

test('a full dump against its parent keeps only the pages that differ; flattened, it is the dump again', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-chain-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const p = [page(), page(), page(), page(), page()];
  await level(path.join(root, 'a'), [{ vaddr: BASE, nrPages: 5, flags: PageFlag.PRESENT }], p);
  // b: page 2 rewritten, and a mapping the parent did not have.
  const changed = page();
  const extra = page();
  const bPages = [p[0]!, p[1]!, changed, p[3]!, p[4]!, extra];
  const bEntries = [
    { vaddr: BASE, nrPages: 5, flags: PageFlag.PRESENT | PageFlag.LAZY },
    { vaddr: BASE + 16 * PAGE_SIZE, nrPages: 1, flags: PageFlag.PRESENT },
  ];
  const b = await level(path.join(root, 'b'), bEntries, bPages);
  const chain = new ContentImageChain();
  const counts = await chain.dedupe(b, path.join(root, 'a'), '../a');
  t.deepEqual(counts, { total: 6, stored: 2 });
  t.deepEqual(
    (await readPagemap(path.join(b, 'pagemap-1.img'))).entries.map((e) => [e.nrPages, e.flags]),
    [
      [2, PageFlag.PARENT],
      [1, PageFlag.PRESENT | PageFlag.LAZY],
      [2, PageFlag.PARENT],
      [1, PageFlag.PRESENT],
    ],
  );
  t.deepEqual(await readFile(path.join(b, 'pages-1.img')), Buffer.concat([changed, extra]));

  const flat = path.join(root, 'flat');
  t.deepEqual(await chain.flatten(b, flat), { total: 6, stored: 6 });
  t.deepEqual(await readFile(path.join(flat, 'pages-1.img')), Buffer.concat(bPages));
  t.is(await readFile(path.join(flat, 'core-1.img'), 'utf8'), 'core');
});

test('three levels: the top flattens through both parents; rebased past the middle, it takes what the middle held', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-chain-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const chain = new ContentImageChain();
  const p = [page(), page(), page(), page()];
  await level(path.join(root, 'a'), [{ vaddr: BASE, nrPages: 4, flags: PageFlag.PRESENT }], p);
  const m1 = page();
  const b = await level(
    path.join(root, 'b'),
    [{ vaddr: BASE, nrPages: 4, flags: PageFlag.PRESENT }],
    [p[0]!, m1, p[2]!, p[3]!],
  );
  await chain.dedupe(b, path.join(root, 'a'), '../a');
  const m3 = page();
  const c = await level(
    path.join(root, 'c'),
    [{ vaddr: BASE, nrPages: 4, flags: PageFlag.PRESENT }],
    [p[0]!, m1, p[2]!, m3],
  );
  t.deepEqual(await chain.dedupe(c, b, '../b'), { total: 4, stored: 1 }, 'compared through b into a');
  t.deepEqual(await chain.chain(c), [c, b, path.join(root, 'a')]);

  const flat = path.join(root, 'flat');
  await chain.flatten(c, flat);
  t.deepEqual(await readFile(path.join(flat, 'pages-1.img')), Buffer.concat([p[0]!, m1, p[2]!, m3]));

  const rebased = path.join(root, 'c2');
  t.deepEqual(await chain.rebase(c, rebased, '../a'), { total: 4, stored: 2 });
  t.deepEqual(await readFile(path.join(rebased, 'pages-1.img')), Buffer.concat([m1, m3]));
  await rm(b, { recursive: true });
  const again = path.join(root, 'flat2');
  await chain.flatten(rebased, again);
  t.deepEqual(await readFile(path.join(again, 'pages-1.img')), Buffer.concat([p[0]!, m1, p[2]!, m3]));
});

test('a chain whose parent is gone, or that loops, is an error', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-chain-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const chain = new ContentImageChain();
  const a = await level(
    path.join(root, 'a'),
    [{ vaddr: BASE, nrPages: 1, flags: PageFlag.PARENT }],
    [],
    '../b',
  );
  await level(path.join(root, 'b'), [{ vaddr: BASE, nrPages: 1, flags: PageFlag.PARENT }], [], '../a');
  await t.throwsAsync(chain.chain(a), { message: /loop/ });
  const orphan = await level(
    path.join(root, 'orphan'),
    [{ vaddr: BASE, nrPages: 1, flags: PageFlag.PARENT }],
    [],
    '../gone',
  );
  await t.throwsAsync(chain.chain(orphan));
  await t.throwsAsync(chain.flatten(orphan, path.join(root, 'flat')));
});
