import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { assignState, AssignmentError } from '../../src/domain/sidecar/assign.js';
import { keyGroupFor, keyGroupRange } from '../../src/domain/sidecar/key-groups.js';
import type { CheckpointMetadata } from '../../src/domain/sidecar/metadata.js';
import { encodeFrame, FrameDecoder } from '../../src/domain/sidecar/frame-codec.js';
import { TransactionalFileSink } from '../../src/sidecar/sdk/file-sink.js';
import { FileLinesSource } from '../../src/sidecar/sdk/file-source.js';
import {
  KEY_GROUPS_PER_BLOCK,
  KeyedStateBackend,
  type KeyedSnapshot,
} from '../../src/sidecar/sdk/keyed-state.js';
import { SinkLogic } from '../../src/sidecar/sdk/sink-logic.js';
import type { SidecarJob } from '../../src/sidecar/sdk/sidecar-job.js';
import { SidecarServer } from '../../src/sidecar/sdk/sidecar-server.js';
import { StreamJob } from '../../src/sidecar/sdk/stream-job.js';
import { Task, type Barrier, type TaskSnapshot } from '../../src/sidecar/sdk/task.js';

const barrier = (id: number, mode: Barrier['mode'] = 'exactly_once'): Barrier => ({
  kind: 'barrier',
  id,
  timestamp: 0,
  mode,
  incremental: false,
});

/** A two-input summing task; each snapshot records the sum at the barrier. */
function summing() {
  const seen: number[] = [];
  const snapshots: { id: number; sum: number }[] = [];
  let sum = 0;
  const task = new Task(
    'sum',
    0,
    2,
    {
      process: (_ch, v) => {
        seen.push(v as number);
        sum += v as number;
      },
      snapshot: (b): TaskSnapshot => {
        snapshots.push({ id: b.id, sum });
        return {};
      },
    },
    () => undefined,
  );
  const rec = (ch: number, v: number) => task.receive(ch, { kind: 'record', value: v });
  return { task, seen, snapshots, rec };
}

test('exactly_once: an input that delivered the barrier is held back until every input has', (t) => {
  const { task, seen, snapshots, rec } = summing();
  rec(0, 1);
  task.receive(0, barrier(1));
  rec(0, 100); // after barrier 1 on input 0: must not be in checkpoint 1
  rec(1, 10);
  t.deepEqual(seen, [1, 10]);
  task.receive(1, barrier(1));
  t.deepEqual(snapshots, [{ id: 1, sum: 11 }]);
  t.deepEqual(seen, [1, 10, 100], 'the held-back record is processed after the snapshot');
});

test('at_least_once: nothing is held back, the snapshot may include later records', (t) => {
  const { task, seen, snapshots, rec } = summing();
  task.receive(0, barrier(1, 'at_least_once'));
  rec(0, 100);
  rec(1, 10);
  task.receive(1, barrier(1, 'at_least_once'));
  t.deepEqual(seen, [100, 10]);
  t.deepEqual(snapshots, [{ id: 1, sum: 110 }]);
});

test('a newer barrier first aborts the older alignment; stale and aborted barriers are ignored', (t) => {
  const { task, snapshots, rec } = summing();
  task.receive(0, barrier(1));
  rec(0, 5);
  task.receive(1, barrier(2)); // checkpoint 1 cannot complete here any more
  rec(1, 7);
  task.receive(0, barrier(2));
  t.deepEqual(snapshots, [{ id: 2, sum: 5 }]);
  task.receive(1, barrier(1));
  t.is(snapshots.length, 1);
  task.receive(0, barrier(3));
  task.cancel(3);
  rec(0, 1);
  task.receive(1, barrier(3));
  t.is(snapshots.length, 1, 'an aborted checkpoint takes no snapshot');
  t.deepEqual(snapshots, [{ id: 2, sum: 5 }]);
});

/** Serialises every new block of a keyed snapshot into one buffer. */
const bytesOf = (snap: KeyedSnapshot) =>
  Buffer.concat(snap.parts.flatMap((p) => ('write' in p ? p.write() : [])));

test('keyed state: a snapshot is the state at the barrier, whatever is written afterwards', (t) => {
  const b = new KeyedStateBackend(128);
  const count = b.valueState<number>('count');
  const seen = b.mapState<number>('seen');
  for (const k of ['a', 'b', 'c']) {
    b.currentKey = k;
    count.set(1);
    seen.put('x', 1);
  }
  const snap = b.snapshot(false);
  b.currentKey = 'a';
  count.set(2);
  seen.put('x', 2);
  seen.put('y', 3);
  const bytes = bytesOf(snap);
  const restored = new KeyedStateBackend(128);
  t.is(restored.restore(bytes), 6);
  restored.currentKey = 'a';
  t.is(restored.valueState<number>('count').get(), 1);
  t.deepEqual([...restored.mapState<number>('seen').entries()], [['x', 1]]);
  // A subtask keeps only the keys of its key groups.
  const g = keyGroupFor('a', 128);
  const only = new KeyedStateBackend(128, { start: g, end: g });
  only.restore(bytes);
  only.currentKey = 'a';
  t.is(only.valueState<number>('count').get(), 1);
  t.is(only.keys(), ['a', 'b', 'c'].filter((k) => keyGroupFor(k, 128) === g).length * 2);
});

test('incremental snapshots send only the blocks written since the last completed checkpoint', (t) => {
  const b = new KeyedStateBackend(128);
  const v = b.valueState<number>('v');
  const keys = Array.from({ length: 400 }, (_, i) => `k${i}`);
  for (const k of keys) {
    b.currentKey = k;
    v.set(1);
  }
  const first = b.snapshot(true);
  t.is(first.parts.length, 128 / KEY_GROUPS_PER_BLOCK);
  t.true(
    first.parts.every((p) => 'write' in p),
    'nothing is confirmed yet',
  );
  const handles = new Map(
    first.parts.map((p) => [p.block, { name: `h${p.block}`, size: 1, sha256: 'a'.repeat(64), shared: true }]),
  );
  b.confirm(first.epoch, handles);
  b.currentKey = 'k7';
  v.set(2);
  const changed = Math.floor(keyGroupFor('k7', 128) / KEY_GROUPS_PER_BLOCK);
  const second = b.snapshot(true);
  t.deepEqual(
    second.parts.filter((p) => 'write' in p).map((p) => p.block),
    [changed],
  );
  t.true(second.parts.every((p) => 'write' in p || p.reuse.name === `h${p.block}`));
  t.true(
    b.snapshot(false).parts.every((p) => 'write' in p),
    'a full snapshot when cryo asks for one',
  );
  // Restoring every part of the second snapshot (new and reused) gives the state at its barrier.
  const all = Buffer.concat([bytesOf(first), bytesOf(second)]);
  const r = new KeyedStateBackend(128);
  r.restore(all);
  r.currentKey = 'k7';
  t.is(r.valueState<number>('v').get(), 2);
  t.is(r.keys(), 400);
  b.forgetConfirmed();
  t.true(b.snapshot(true).parts.every((p) => 'write' in p));
});

test('a file source resumes exactly at its offsets, across multi-byte text and a last line without newline', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-src-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'in.txt');
  const lines = ['één', 'twee', 'drie ✓', 'vier', 'vijf'];
  await writeFile(file, lines.join('\n'));
  const source = new FileLinesSource([file]);
  const first = source.open(0, 1, {});
  const got: string[] = [];
  first.poll((l) => got.push(l), 2);
  const offsets = first.offsets();
  first.close();
  const second = source.open(0, 1, offsets);
  while (second.poll((l) => got.push(l), 1));
  second.close();
  t.deepEqual(got, lines);
});

const handle = (name: string, range?: { start: number; end: number }) => ({
  name,
  size: 1,
  sha256: 'a'.repeat(64),
  ...(range ? { keyGroupRange: range } : {}),
});

const metadata: CheckpointMetadata = {
  checkpointId: 4,
  job: 'j',
  timestamp: 0,
  mode: 'exactly_once',
  maxParallelism: 128,
  subtasks: [
    { operator: 'src', subtask: 0, handles: [], offsets: { a: 10 } },
    { operator: 'src', subtask: 1, handles: [], offsets: { b: 20 } },
    { operator: 'count', subtask: 0, handles: [handle('k0', keyGroupRange(0, 2, 128))], offsets: {} },
    { operator: 'count', subtask: 1, handles: [handle('k1', keyGroupRange(1, 2, 128))], offsets: {} },
    { operator: 'sink', subtask: 0, handles: [handle('s0')], offsets: {} },
  ],
};

test('rescaling assigns every key group to exactly one new subtask, with every handle that holds it', (t) => {
  for (const p of [1, 2, 3, 5]) {
    const out = assignState(
      metadata,
      [
        { id: 'src', kind: 'source', parallelism: 2 },
        { id: 'count', kind: 'keyed', parallelism: p },
        { id: 'sink', kind: 'sink', parallelism: 1 },
      ],
      128,
    );
    const count = out.filter((a) => a.operator === 'count');
    t.is(count.length, p);
    for (let g = 0; g < 128; g++) {
      const owners = count.filter((a) => a.keyGroupRange!.start <= g && g <= a.keyGroupRange!.end);
      t.is(owners.length, 1);
      const holder = g < 64 ? 'k0' : 'k1';
      t.true(owners[0]!.handles.some((h) => h.name === holder));
    }
    t.deepEqual(out.find((a) => a.operator === 'src')!.offsets, { a: 10, b: 20 });
    t.deepEqual(
      out.filter((a) => a.operator === 'sink').flatMap((a) => a.handles.map((h) => h.name)),
      ['s0'],
    );
  }
  t.throws(() => assignState(metadata, [{ id: 'src', kind: 'source', parallelism: 1 }], 128), {
    instanceOf: AssignmentError,
  });
  t.throws(() => assignState(metadata, [], 256), { instanceOf: AssignmentError, message: /maxParallelism/ });
});

/** A job whose sidecar listens on a temporary socket; `frames` talks to it raw. */
async function jobOnSocket(t: import('ava').ExecutionContext) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sdk-'));
  await writeFile(path.join(dir, 'in.txt'), 'a b\nc d\n');
  const job = new StreamJob({
    name: 'fuzz',
    socketPath: path.join(dir, 's.sock'),
    restoreMarker: path.join(dir, 'm'),
    log: () => undefined,
  });
  job
    .source('src', new FileLinesSource([path.join(dir, 'in.txt')]))
    .flatMap('split', (l: string) => l.split(' '))
    .keyBy((w) => w)
    .process('count', () => undefined)
    .sink('out', {
      open: () => ({
        write: () => undefined,
        preCommit: async (id) => ({ checkpointId: id, subtask: 0, staged: `s${id}`, size: 0 }),
        commit: async () => undefined,
        commitSync: () => undefined,
        rewind: () => undefined,
      }),
    });
  const running = job.run();
  t.teardown(async () => {
    job.stop();
    await running;
    await rm(dir, { recursive: true, force: true });
  });
  const socket = path.join(dir, 's.sock');
  for (let i = 0; i < 50; i++) {
    if (await connects(socket)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return socket;
}

function connects(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(file);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Sends `bytes`, and collects the frames the job answers until it closes the connection. */
function exchange(file: string, bytes: Buffer): Promise<string[]> {
  return new Promise((resolve) => {
    const s = net.createConnection(file);
    const decoder = new FrameDecoder();
    const types: string[] = [];
    s.on('data', (c: Buffer) => {
      try {
        for (const d of decoder.push(c))
          types.push(d.frame.type === 'error' ? `error:${d.frame.code}` : d.frame.type);
      } catch {
        types.push('garbage');
      }
    });
    s.on('close', () => resolve(types));
    s.on('error', () => undefined);
    s.once('connect', () => s.write(bytes));
    setTimeout(() => s.end(), 500);
  });
}

test('the SDK answers malformed, unknown-version and oversized frames with an error, and keeps serving', async (t) => {
  const socket = await jobOnSocket(t);
  const cases: [Buffer, string][] = [
    [Buffer.from('not json\n'), 'error:MALFORMED_FRAME'],
    [Buffer.from('{"v":2,"type":"trigger"}\n'), 'error:UNKNOWN_VERSION'],
    [Buffer.from(`{"v":1,"type":"ack","pad":"${'x'.repeat(2 << 20)}"}\n`), 'error:FRAME_TOO_LARGE'],
    [
      Buffer.from('{"v":1,"type":"trigger","checkpointId":-1,"timestamp":0,"mode":"exactly_once"}\n'),
      'error:INVALID_FRAME',
    ],
    [encodeFrame({ v: 1, type: 'restore', checkpointId: 1, assignments: [] }), 'error:INVALID_FRAME'],
  ];
  for (const [bytes, expected] of cases) {
    const answer = await exchange(socket, bytes);
    t.is(answer[0], 'register');
    t.true(answer.includes(expected), `${expected} in ${answer.join(',')}`);
  }
  // Random bytes never bring it down.
  for (let i = 0; i < 20; i++) {
    const noise = Buffer.from(Array.from({ length: 64 + i * 13 }, (_, j) => (j * 7919 + i * 31) % 256));
    await exchange(socket, Buffer.concat([noise, Buffer.from('\n')]));
  }
  const after = await exchange(
    socket,
    encodeFrame({ v: 1, type: 'trigger', checkpointId: 1, timestamp: 0, mode: 'exactly_once' }),
  );
  t.is(after[0], 'register');
  t.is(after.filter((f) => f === 'ack').length, 4, `one ack per subtask: ${after.join(',')}`);
  // A trigger at or below an id the job has seen is refused at once, never silently ignored.
  const stale = await exchange(
    socket,
    encodeFrame({ v: 1, type: 'trigger', checkpointId: 1, timestamp: 0, mode: 'exactly_once' }),
  );
  t.deepEqual(stale, ['register', 'error:STALE_CHECKPOINT_ID']);
});

test('a transaction stays in every snapshot until its commit has finished, and is staged before the ack', async (t) => {
  const committed: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let stage!: () => void;
  const staging = new Promise<void>((r) => (stage = r));
  const sink = new SinkLogic({
    write: () => undefined,
    preCommit: async (id) => {
      if (id === 1) await staging;
      return { checkpointId: id, subtask: 0, staged: `.pending-0-${id}`, size: 0 };
    },
    commit: async (txs) => {
      await gate;
      committed.push(...txs.map((tx) => tx.checkpointId));
    },
    commitSync: () => undefined,
    rewind: () => undefined,
  });
  const ids = async (s: TaskSnapshot) => {
    const bytes = Buffer.concat(await s.operator!());
    return (JSON.parse(bytes.toString('utf8')) as { checkpointId: number }[]).map((tx) => tx.checkpointId);
  };
  const first = ids(sink.snapshot(barrier(1)));
  let acked = false;
  void first.then(() => (acked = true));
  await new Promise((r) => setTimeout(r, 20));
  t.false(acked, 'no ack before the epoch is staged');
  stage();
  t.deepEqual(await first, [1]);
  sink.complete(1); // the commit of 1 hangs
  t.deepEqual(await ids(sink.snapshot(barrier(2))), [1, 2], 'a restore from 2 commits 1 again');
  release();
  await sink.settled();
  t.deepEqual(committed, [1]);
  t.is(sink.committedId, 1);
  t.deepEqual(await ids(sink.snapshot(barrier(3))), [2, 3]);
  sink.complete(3);
  await sink.settled();
  t.deepEqual(committed, [1, 2, 3]);
  t.is(sink.committedId, 3);
});

test('the file sink stages an epoch as a hidden file, commits by rename (twice is harmless), and rewinds later epochs', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sink-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const w = new TransactionalFileSink<string>(dir, (l) => `${l}\n`).open(0);
  w.write('a');
  const tx1 = await w.preCommit(1);
  w.write('b');
  const tx2 = await w.preCommit(2);
  t.deepEqual((await readdir(dir)).sort(), ['.pending-0-0000000001', '.pending-0-0000000002']);
  await w.commit([tx1]);
  await w.commit([tx1]);
  t.is(await readFile(path.join(dir, 'part-0-0000000001'), 'utf8'), 'a\n');
  w.rewind(1);
  t.deepEqual(await readdir(dir), ['part-0-0000000001'], 'epoch 2 will be produced again');
  await t.throwsAsync(w.commit([tx2]), { code: 'ENOENT' });
  w.commitSync([tx1]);
});

test('the SDK is exported from the package as cryo/sidecar', async (t) => {
  const specifier = 'cryo/sidecar';
  const sdk = (await import(specifier)) as Record<string, unknown>;
  for (const name of ['StreamJob', 'FileLinesSource', 'TransactionalFileSink', 'keyGroupFor'])
    t.is(typeof sdk[name], 'function', name);
  t.is(sdk.SIDECAR_SOCKET_PATH, '/run/cryo/sidecar.sock');
});

test("a write to a connection cryo has closed is logged, never an unhandled rejection in the user's job", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sdk-closed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const job: SidecarJob = {
    name: 'job',
    maxParallelism: 128,
    finished: false,
    highestCheckpointId: 5,
    committedCheckpointId: 5,
    awaitingRestore: false,
    operators: () => [],
    trigger: () => undefined,
    complete: () => undefined,
    abort: () => undefined,
    restore: () => undefined,
  };
  const logged: string[] = [];
  const server = new SidecarServer(job, path.join(dir, 's.sock'), (m) => logged.push(m));
  await server.listen();
  t.teardown(() => server.close());
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => rejections.push(err);
  process.on('unhandledRejection', onRejection);
  t.teardown(() => void process.off('unhandledRejection', onRejection));
  // A connection cryo has closed by the time the job answers: every answer's write fails.
  const closed = new net.Socket();
  closed.destroy();
  const listener = (server as unknown as { server: net.Server }).server;
  listener.emit('connection', closed);
  // A stale trigger is answered with an error frame, written to the closed connection.
  closed.emit(
    'data',
    encodeFrame({ v: 1, type: 'trigger', checkpointId: 3, timestamp: 0, mode: 'exactly_once' }),
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(rejections, []);
  t.true(
    logged.some((m) => m.includes('could not write')),
    `logged: ${logged.join(' | ')}`,
  );
});
