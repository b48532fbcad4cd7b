import test from 'ava';
import { CheckpointIdSchema, ImageRefSchema, NameSchema } from '../../src/domain/names.js';

test('names accept what Docker accepts', (t) => {
  for (const ok of ['a', 'counter', 'my_container.1', 'A-b_c.d', 'x'.repeat(128)]) {
    t.true(NameSchema.safeParse(ok).success, ok);
  }
});

test('names refuse traversal, separators and oversize', (t) => {
  for (const bad of [
    '',
    '../x',
    '..',
    'a/../b',
    '/etc',
    'a/b',
    '.hidden',
    '-x',
    'a..b',
    'x'.repeat(129),
    'a b',
    'a\nb',
    'é',
  ]) {
    t.false(NameSchema.safeParse(bad).success, JSON.stringify(bad));
  }
});

test('checkpoint ids are lowercase alphanumerics only', (t) => {
  t.true(CheckpointIdSchema.safeParse('000mwqii0as2ccolnyz48').success);
  for (const bad of ['short', '../../etc/x', 'ABCDEFGHIJ', '0000000-00000']) {
    t.false(CheckpointIdSchema.safeParse(bad).success, bad);
  }
});

test('image references: Docker grammar or an image id; never a path', (t) => {
  for (const ok of [
    'busybox',
    'cryo-fixture/node:1',
    `sha256:${'a'.repeat(64)}`,
    'registry.local:5000/team/app:1.2',
    `ubuntu@sha256:${'b'.repeat(64)}`,
  ]) {
    t.true(ImageRefSchema.safeParse(ok).success, ok);
  }
  for (const bad of [
    '../../etc/passwd',
    '//etc',
    '/etc/passwd',
    'a/../b',
    'a..b',
    'Busybox',
    '',
    'x y',
    'a'.repeat(256),
  ]) {
    t.false(ImageRefSchema.safeParse(bad).success, bad);
  }
});
