import test from 'ava';
import { ErrorCode, OperationInProgressError } from '../../src/domain/errors/index.js';
import { KeyedLocks } from '../../src/services/support/keyed-locks.js';

test('a second operation on a held key is refused at once with CHECKPOINT_IN_PROGRESS', (t) => {
  const locks = new KeyedLocks();
  const release = locks.acquire('c1', 'checkpoint', 'container "c1"');
  const err = t.throws(() => locks.acquire('c1', 'restore'), { instanceOf: OperationInProgressError });
  t.is(err?.code, ErrorCode.CHECKPOINT_IN_PROGRESS);
  t.is(err?.statusCode, 409);
  t.regex(err?.message ?? '', /checkpoint is in progress/);
  t.notThrows(() => locks.acquire('c2', 'checkpoint'));
  release();
  release();
  t.false(locks.isHeld('c1'));
  t.notThrows(() => locks.acquire('c1', 'restore'));
});

test('an operation refused while a restore holds the key gets RESTORE_IN_PROGRESS', (t) => {
  const locks = new KeyedLocks();
  locks.acquire('c1', 'restore', 'container "c1"');
  const err = t.throws(() => locks.acquire('c1', 'checkpoint'), { instanceOf: OperationInProgressError });
  t.is(err?.code, ErrorCode.RESTORE_IN_PROGRESS);
  t.regex(err?.message ?? '', /restore is in progress/);
});
