import test from 'ava';
import { safeArchivePath, safeRootfsPath, symlinkStaysInside } from '../../src/domain/archive-path.js';

test('archive entry names: normalised, never absolute, never climbing out', (t) => {
  t.is(safeArchivePath('checkpoint/pages-1.img'), 'checkpoint/pages-1.img');
  t.is(safeArchivePath('./checkpoint//core-1.img'), 'checkpoint/core-1.img');
  t.is(safeArchivePath('checkpoint/'), 'checkpoint');
  for (const bad of [
    '/etc/passwd',
    '../x',
    'a/../../x',
    'a/..',
    '..',
    '',
    '.',
    'a\\b',
    'a\0b',
    'x'.repeat(5000),
  ]) {
    t.is(safeArchivePath(bad), undefined, JSON.stringify(bad));
  }
});

test('symlinks must resolve inside the archive', (t) => {
  t.true(symlinkStaysInside('checkpoint/parent', '../pre-checkpoint'));
  t.true(symlinkStaysInside('a/b/c', '../d'));
  t.false(symlinkStaysInside('checkpoint/parent', '../../etc'));
  t.false(symlinkStaysInside('x', '/etc/passwd'));
  t.false(symlinkStaysInside('a', '..'));
  t.false(symlinkStaysInside('a', ''));
});

test('root-filesystem paths from deleted.files', (t) => {
  t.is(safeRootfsPath('/etc/group'), '/etc/group');
  t.is(safeRootfsPath('/a//b/./c'), '/a/b/c');
  for (const bad of ['etc/group', '/../etc', '/a/../../b', '/', '/a\0'])
    t.is(safeRootfsPath(bad), undefined, bad);
});

test('archive entry names with control characters are refused', (t) => {
  for (const bad of ['checkpoint/pages-1.img\n', 'a\nb', 'a\rb', 'a\tb', 'a\u001bb', 'a\u007fb', 'a\0b']) {
    t.is(safeArchivePath(bad), undefined, JSON.stringify(bad));
  }
  t.is(safeArchivePath('checkpoint/tcp-stream-1.img'), 'checkpoint/tcp-stream-1.img');
});
