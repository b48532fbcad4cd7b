import test from 'ava';
import { parseStatsImage } from '../../src/adapters/criu/stats-image.js';

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
const field = (num: number, value: number) => [...varint((num << 3) | 0), ...varint(value)];
const message = (num: number, body: number[]) => [...varint((num << 3) | 2), ...varint(body.length), ...body];

function image(payload: number[]): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32LE(0x54123737, 0);
  head.writeUInt32LE(0x57093306, 4);
  head.writeUInt32LE(payload.length, 8);
  return Buffer.concat([head, Buffer.from(payload)]);
}

test('stats-dump: times in microseconds become milliseconds, page counts stay counts', (t) => {
  const dump = [
    ...field(1, 487),
    ...field(2, 16058),
    ...field(3, 5191),
    ...field(4, 2906),
    ...field(5, 1910),
    ...field(7, 1830),
  ];
  t.deepEqual(parseStatsImage(image(message(1, dump))), {
    freezingMs: 0.487,
    frozenMs: 16.058,
    memdumpMs: 5.191,
    memwriteMs: 2.906,
    pagesScanned: 1910,
    pagesWritten: 1830,
  });
});

test('stats-restore, and images that are empty or cut short', (t) => {
  const restore = [...field(1, 9), ...field(3, 3), ...field(4, 10172), ...field(5, 131072)];
  t.deepEqual(parseStatsImage(image(message(2, restore))), {
    forkingMs: 0.003,
    restoreMs: 10.172,
    pagesRestored: 131072,
  });
  t.deepEqual(parseStatsImage(Buffer.alloc(0)), {});
  t.throws(() => parseStatsImage(image([0x08, 0x80])), { message: /truncated/ });
});
