import test from 'ava';
import { OperationInProgressError } from '../../src/domain/errors.js';
import { KeyedLocks } from '../../src/services/keyed-locks.js';

test('a second operation on a held key is refused at once with CHECKPOINT_IN_PROGRESS', (t) => {
  const locks = new KeyedLocks();
  const release = locks.acquire('c1', 'checkpoint', 'container "c1"');
  const err = t.throws(() => locks.acquire('c1', 'restore'), { instanceOf: OperationInProgressError });
  t.is(err?.code, 'CHECKPOINT_IN_PROGRESS');
  t.is(err?.statusCode, 409);
  t.regex(err?.message ?? '', /checkpoint is in progress/);
  t.notThrows(() => locks.acquire('c2', 'checkpoint'));
  release();
  release();
  t.false(locks.isHeld('c1'));
  t.notThrows(() => locks.acquire('c1', 'restore'));
});
