import test from 'ava';
import {
  CheckpointSchema,
  CreateCheckpointBodySchema,
  RestoreBodySchema,
} from '../../src/domain/checkpoint.js';

const DEFAULTS = {
  leaveRunning: false,
  consistentRootfs: true,
  includeVolumes: false,
  force: false,
  incremental: false,
  tcpEstablished: false,
  fileLocks: false,
  externalUnixSockets: false,
  application: false,
  applicationMode: 'exactly_once',
};

test('an empty or missing create body means defaults', (t) => {
  t.deepEqual(CreateCheckpointBodySchema.parse(null), DEFAULTS);
  t.deepEqual(CreateCheckpointBodySchema.parse(undefined), DEFAULTS);
  t.deepEqual(CreateCheckpointBodySchema.parse({}), DEFAULTS);
  t.deepEqual(CreateCheckpointBodySchema.parse({ name: 'n', leaveRunning: true }), {
    ...DEFAULTS,
    name: 'n',
    leaveRunning: true,
  });
});

test('unknown keys and wrong types are refused, never passed on', (t) => {
  t.false(CreateCheckpointBodySchema.safeParse({ exit: true }).success);
  t.false(CreateCheckpointBodySchema.safeParse({ leaveRunning: 'yes' }).success);
  t.false(CreateCheckpointBodySchema.safeParse({ name: '../x' }).success);
  t.false(RestoreBodySchema.safeParse({ name: 'a/b' }).success);
  t.false(RestoreBodySchema.safeParse({ image: 'x' }).success);
  t.deepEqual(RestoreBodySchema.parse(null), { ports: 'free' });
});

test('a checkpoint record round-trips through its schema', (t) => {
  const cp = {
    id: '000mwqii0as2ccolnyz48',
    name: 'first',
    kind: 'container' as const,
    container: { id: 'a'.repeat(64), name: 'c1', image: 'img:1' },
    createdAt: new Date(0).toISOString(),
    leaveRunning: false,
    sizeBytes: 10,
    stats: { dumpMs: 1, totalMs: 2 },
    status: 'complete' as const,
  };
  t.deepEqual(CheckpointSchema.parse(JSON.parse(JSON.stringify(cp))), cp);
  t.false(CheckpointSchema.safeParse({ ...cp, status: 'partial' }).success);
});
