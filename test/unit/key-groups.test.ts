import test from 'ava';
import {
  defaultMaxParallelism,
  intersect,
  keyGroupFor,
  keyGroupRange,
  murmur3,
  subtaskFor,
} from '../../src/domain/sidecar/key-groups.js';

test('murmur3 (x86, 32-bit, seed 0) matches the reference vectors', (t) => {
  t.is(murmur3(''), 0);
  t.is(murmur3('hello'), 0x248bfa47);
  t.is(murmur3('The quick brown fox jumps over the lazy dog'), 0x2e4ff723);
});

test('ranges of every parallelism are disjoint, contiguous and cover [0, maxParallelism)', (t) => {
  for (const maxP of [1, 7, 128, 1000]) {
    for (let p = 1; p <= Math.min(maxP, 40); p++) {
      let next = 0;
      for (let i = 0; i < p; i++) {
        const r = keyGroupRange(i, p, maxP);
        t.is(r.start, next, `maxP ${maxP} p ${p} i ${i}`);
        t.true(r.end >= r.start);
        for (const g of [r.start, r.end]) t.is(subtaskFor(g, p, maxP), i);
        next = r.end + 1;
      }
      t.is(next, maxP);
    }
  }
});

test('every key lands in exactly one subtask, before and after a rescale 2 -> 3 -> 1', (t) => {
  const maxP = defaultMaxParallelism(2);
  t.is(maxP, 128);
  for (let n = 0; n < 2000; n++) {
    const g = keyGroupFor(`word-${n}`, maxP);
    t.true(g >= 0 && g < maxP);
    for (const p of [2, 3, 1]) {
      const owners = [...Array(p).keys()].filter((i) => {
        const r = keyGroupRange(i, p, maxP);
        return g >= r.start && g <= r.end;
      });
      t.deepEqual(owners, [subtaskFor(g, p, maxP)]);
    }
  }
  t.deepEqual(intersect({ start: 0, end: 63 }, { start: 43, end: 85 }), { start: 43, end: 63 });
  t.is(intersect({ start: 0, end: 42 }, { start: 43, end: 85 }), undefined);
  t.throws(() => keyGroupRange(2, 2, 128), { instanceOf: RangeError });
  t.is(defaultMaxParallelism(100), 256);
});
