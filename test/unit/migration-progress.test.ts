import { Writable } from 'node:stream';
import test from 'ava';
import type { Migration } from '../../src/domain/migration.js';
import { MigrationProgress, migrationProgress } from '../../src/cli/migration-progress.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return Object.assign(stream, { isTTY, columns: 100, text: () => chunks.join('') });
}

const at = '2026-11-27T08:00:00.000Z';
const base: Migration = {
  id: 'm1',
  container: { id: 'c'.repeat(64), name: 'web' },
  target: 'http://b:7070',
  status: 'running',
  phases: [
    { name: 'preflight', startedAt: at, status: 'done', ms: 40 },
    { name: 'image', startedAt: at, status: 'skipped', ms: 0, detail: 'the target has the image' },
    { name: 'checkpoint', startedAt: at, status: 'done', ms: 600 },
    { name: 'stream', startedAt: at, status: 'running' },
  ],
  startedAt: at,
  bytesSent: 10_000_000,
  bytesTotal: 40_000_000,
};

test('the bar follows the phase and the bytes sent against the checkpoint size', (t) => {
  t.deepEqual(migrationProgress(base), { phase: 'stream', sent: 10_000_000, total: 40_000_000 });
  // Before the checkpoint is taken, nothing is known of the size; a stream never shows over 100 %.
  t.deepEqual(migrationProgress({ ...base, phases: [], bytesSent: 0, bytesTotal: undefined }), {
    phase: 'preflight',
    sent: 0,
    total: 1,
  });
  t.is(migrationProgress({ ...base, bytesSent: 41_000_000 }).total, 41_000_000);
});

test('on a terminal the phases are logged above a bar of the bytes sent', (t) => {
  const out = sink(true);
  const progress = new MigrationProgress(out);
  progress.update(base);
  progress.update({ ...base, bytesSent: 30_000_000 });
  progress.stop();
  const text = out.text();
  t.regex(text, /preflight: done in 40 ms/);
  t.regex(text, /image: skipped \(the target has the image\)/);
  t.regex(text, /checkpoint: done in 600 ms/);
  t.regex(text, /stream \[[^\]]*\] 75% 30\.0\/40\.0 MB/);
  t.notRegex(text, /stream: running/, 'a running phase has no line yet');
});

test('without a terminal only the phase lines are written, each once', (t) => {
  const out = sink(false);
  const progress = new MigrationProgress(out);
  progress.update(base);
  progress.update({
    ...base,
    status: 'succeeded',
    phases: [...base.phases.slice(0, 3), { name: 'stream', startedAt: at, status: 'done', ms: 200 }],
  });
  progress.stop();
  t.is(
    out.text(),
    [
      'preflight: done in 40 ms',
      'image: skipped (the target has the image)',
      'checkpoint: done in 600 ms',
      'stream: done in 200 ms',
      '',
    ].join('\n'),
  );
});
