import test from 'ava';
import type { AckFrame, Frame, StateHandle } from '../../src/domain/sidecar/protocol.js';
import {
  CheckpointCoordinator,
  TriggerRefusedError,
  type CheckpointMetadata,
  type CoordinatorClock,
  type CoordinatorOptions,
  type CoordinatorStore,
} from '../../src/services/sidecar/checkpoint-coordinator.js';

class FakeClock implements CoordinatorClock {
  t = 1_000;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number) {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }
  async advance(ms: number): Promise<void> {
    this.t += ms;
    for (const timer of this.timers.filter((x) => x.live && x.at <= this.t)) {
      timer.live = false;
      timer.fn();
    }
    await new Promise((r) => setImmediate(r));
  }
}

class MemoryStore implements CoordinatorStore {
  last = 0;
  metadata = new Map<number, CheckpointMetadata>();
  discarded: { id: number; names: string[] }[] = [];
  failWrite = false;
  async lastCheckpointId() {
    return this.last;
  }
  async reserveCheckpointId(id: number) {
    if (id <= this.last) throw new Error(`id ${id} reused`);
    this.last = id;
  }
  async writeMetadata(id: number, m: CheckpointMetadata) {
    if (this.failWrite) throw new Error('disk full');
    this.metadata.set(id, m);
  }
  async discard(id: number, handles: StateHandle[]) {
    this.discarded.push({ id, names: handles.map((h) => h.name) });
  }
}

const topology = {
  job: 'wordcount',
  maxParallelism: 128,
  subtasks: [
    { operator: 'source', subtask: 0 },
    { operator: 'count', subtask: 0 },
    { operator: 'count', subtask: 1 },
  ],
};

function setup(options: Partial<CoordinatorOptions> = {}, store = new MemoryStore()) {
  const clock = new FakeClock();
  const sent: Frame[] = [];
  const coordinator = new CheckpointCoordinator(topology, store, clock, (f) => sent.push(f), options);
  return { clock, sent, store, coordinator };
}

const ack = (
  checkpointId: number,
  operator: string,
  subtask: number,
  name = `${operator}-${subtask}`,
): AckFrame => ({
  v: 1,
  type: 'ack',
  checkpointId,
  operator,
  subtask,
  handles: [{ name, size: 1, sha256: '0'.repeat(64) }],
  offsets: operator === 'source' ? { 'input.txt': 10 * checkpointId } : {},
});

async function ackAll(c: CheckpointCoordinator, id: number) {
  for (const s of topology.subtasks) await c.onAck(ack(id, s.operator, s.subtask));
}

test('a checkpoint completes only when every subtask acked and _metadata is durable; then complete is sent', async (t) => {
  const { coordinator, sent, store } = setup();
  const outcome = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  t.like(sent[0], { type: 'trigger', checkpointId: 1, mode: 'exactly_once' });
  await coordinator.onAck(ack(1, 'source', 0));
  await coordinator.onAck(ack(1, 'count', 0));
  t.false(store.metadata.has(1));
  t.false(sent.some((f) => f.type === 'complete'));
  await coordinator.onAck(ack(1, 'count', 1));
  const done = await outcome;
  t.is(done.status, 'complete');
  t.deepEqual(
    store.metadata
      .get(1)
      ?.subtasks.map((s) => `${s.operator}/${s.subtask}`)
      .sort(),
    ['count/0', 'count/1', 'source/0'],
  );
  t.like(sent.at(-1), { type: 'complete', checkpointId: 1 });
  t.is(coordinator.latestCompleted, 1);
});

test('ids increase strictly, also across a restart of the coordinator', async (t) => {
  const store = new MemoryStore();
  const first = setup({}, store);
  const a = first.coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await ackAll(first.coordinator, 1);
  await a;
  const b = first.coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await ackAll(first.coordinator, 2);
  await b;
  const second = setup({}, store);
  void second.coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  t.like(second.sent[0], { type: 'trigger', checkpointId: 3 });
});

test('a timeout aborts with EXPIRED, discards what was acked, and a late ack is discarded too', async (t) => {
  const { coordinator, sent, store, clock } = setup({ timeoutMs: 60_000 });
  const outcome = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await coordinator.onAck(ack(1, 'source', 0));
  await clock.advance(59_999);
  t.false(sent.some((f) => f.type === 'abort'));
  await clock.advance(1);
  const done = await outcome;
  t.like(done, { status: 'aborted', reason: 'EXPIRED' });
  t.like(sent.at(-1), { type: 'abort', checkpointId: 1 });
  t.deepEqual(store.discarded, [{ id: 1, names: ['source-0'] }]);
  await coordinator.onAck(ack(1, 'count', 0));
  t.deepEqual(store.discarded.at(-1), { id: 1, names: ['count-0'] });
  t.false(store.metadata.has(1), 'never completed');
});

test('max concurrent and the minimum pause refuse a trigger without starting anything', async (t) => {
  const { coordinator, sent, clock } = setup({ maxConcurrent: 1, minPauseMs: 5_000 });
  const first = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  const busy = await t.throwsAsync(coordinator.trigger(), { instanceOf: TriggerRefusedError });
  t.is(busy?.code, 'TOO_MANY_CONCURRENT');
  await ackAll(coordinator, 1);
  await first;
  await clock.advance(4_999);
  const pause = await t.throwsAsync(coordinator.trigger(), { instanceOf: TriggerRefusedError });
  t.is(pause?.code, 'MIN_PAUSE');
  t.is(sent.filter((f) => f.type === 'trigger').length, 1);
  await clock.advance(1);
  void coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  t.like(sent.at(-1), { type: 'trigger', checkpointId: 2 });
});

test('declines count as failures; beyond the tolerable count triggers are refused until one completes', async (t) => {
  const { coordinator } = setup({ tolerableFailures: 1 });
  for (const id of [1, 2]) {
    const outcome = coordinator.trigger();
    await new Promise((r) => setImmediate(r));
    await coordinator.onDecline({
      v: 1,
      type: 'decline',
      checkpointId: id,
      operator: 'count',
      subtask: 0,
      reason: 'busy',
    });
    t.like(await outcome, { status: 'aborted', reason: 'DECLINED' });
  }
  t.is(coordinator.consecutiveFailures, 2);
  const refused = await t.throwsAsync(coordinator.trigger(), { instanceOf: TriggerRefusedError });
  t.is(refused?.code, 'TOO_MANY_FAILURES');
});

test('a failure is reset by a success', async (t) => {
  const { coordinator } = setup({ tolerableFailures: 1 });
  const one = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await coordinator.onDecline({
    v: 1,
    type: 'decline',
    checkpointId: 1,
    operator: 'source',
    subtask: 0,
    reason: 'x',
  });
  await one;
  const two = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await ackAll(coordinator, 2);
  t.is((await two).status, 'complete');
  t.is(coordinator.consecutiveFailures, 0);
});

test('duplicate and unknown acks are ignored and their files discarded; a duplicate never discards the kept one', async (t) => {
  const { coordinator, store } = setup();
  const outcome = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await coordinator.onAck(ack(1, 'source', 0));
  await coordinator.onAck(ack(1, 'source', 0, 'source-0-retry'));
  await coordinator.onAck(ack(1, 'source', 0));
  await coordinator.onAck(ack(99, 'count', 0));
  t.deepEqual(store.discarded, [
    { id: 1, names: ['source-0-retry'] },
    { id: 1, names: [] },
    { id: 99, names: ['count-0'] },
  ]);
  await coordinator.onAck(ack(1, 'count', 0));
  await coordinator.onAck(ack(1, 'count', 1));
  const done = await outcome;
  t.is(done.status, 'complete');
  if (done.status === 'complete') {
    t.deepEqual(
      done.metadata.subtasks.find((s) => s.operator === 'source')?.handles.map((h) => h.name),
      ['source-0'],
    );
  }
});

test('_metadata that cannot be written aborts the checkpoint: no complete is ever sent for it', async (t) => {
  const { coordinator, sent, store } = setup();
  store.failWrite = true;
  const outcome = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await ackAll(coordinator, 1);
  t.like(await outcome, { status: 'aborted', reason: 'METADATA_FAILED' });
  t.false(sent.some((f) => f.type === 'complete'));
  t.is(store.discarded[0]?.names.length, 3);
});

test('stop aborts what is in flight and refuses new triggers', async (t) => {
  const { coordinator } = setup();
  const outcome = coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await coordinator.stop();
  t.like(await outcome, { status: 'aborted', reason: 'COORDINATOR_STOPPED' });
  const refused = await t.throwsAsync(coordinator.trigger(), { instanceOf: TriggerRefusedError });
  t.is(refused?.code, 'STOPPED');
});

test('two triggers at once with room for both take different ids', async (t) => {
  const { coordinator, sent } = setup({ maxConcurrent: 2 });
  void coordinator.trigger();
  void coordinator.trigger();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(
    sent.filter((f) => f.type === 'trigger').map((f) => (f as { checkpointId: number }).checkpointId),
    [1, 2],
  );
  await t.throwsAsync(coordinator.trigger(), { instanceOf: TriggerRefusedError });
});
