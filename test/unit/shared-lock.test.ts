import test from 'ava';
import { SharedLock } from '../../src/adapters/docker/shared-lock.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

test('shared holders run together; an exclusive one waits for them, and holds new ones back until it is done', async (t) => {
  const lock = new SharedLock();
  const log: string[] = [];
  let releaseA!: () => void;
  const a = lock.shared(async () => {
    log.push('a+');
    await new Promise<void>((r) => (releaseA = r));
    log.push('a-');
  });
  const b = lock.shared(async () => {
    log.push('b+');
    await tick();
    log.push('b-');
  });
  await tick();
  const x = lock.exclusive(async () => {
    log.push('x+');
    await tick();
    log.push('x-');
  });
  await tick();
  const c = lock.shared(async () => {
    log.push('c');
  });
  await tick();
  t.deepEqual(log, ['a+', 'b+', 'b-'], 'the exclusive one waits for a; c waits behind it');
  releaseA();
  await Promise.all([a, b, x, c]);
  t.deepEqual(log, ['a+', 'b+', 'b-', 'a-', 'x+', 'x-', 'c']);
});

test('exclusive holders take turns, and a failure releases the lock', async (t) => {
  const lock = new SharedLock();
  const log: string[] = [];
  const first = lock.exclusive(async () => {
    log.push('1+');
    await tick();
    log.push('1-');
    throw new Error('boom');
  });
  const second = lock.exclusive(async () => {
    log.push('2');
  });
  await t.throwsAsync(first, { message: 'boom' });
  await second;
  await lock.shared(async () => log.push('s'));
  t.deepEqual(log, ['1+', '1-', '2', 's']);
});
