import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import anyTest, { type TestFn } from 'ava';
import { openDatabase, type Db } from '../../src/adapters/store/database.js';
import { HostIntentKind } from '../../src/domain/host-intent.js';
import { SqliteHostJournal } from '../../src/adapters/store/sqlite-host-journal.js';
import type {
  Checkpoint,
  PreparedContainer,
  RestoredContainer,
  RestoreResult,
} from '../../src/domain/checkpoint.js';
import { ErrorCode, TargetError } from '../../src/domain/errors/index.js';
import type { CreateMigrationBody, HostInfoReport, Migration } from '../../src/domain/migration.js';
import { systemClock } from '../../src/services/ports/clock.js';
import { localHost } from '../../src/adapters/host/local-host.js';
import type {
  CheckpointRemoval,
  PeerAgent,
  PeerRestoreOptions,
} from '../../src/services/ports/peer-agent.js';
import { sleep } from '../../harness/containers.js';
import { fakeServices } from './fake-services.js';
import { FakeEngine, type FakeRuntime } from './fakes.js';

/** A target agent that records what it is asked and fails where a test tells it to. */
class FakePeer implements PeerAgent {
  readonly url = 'http://target.test:7070';
  calls: string[] = [];
  hasTheImage = true;
  /** The target's disk floor (its CRYO_MIN_FREE_BYTES). */
  minFreeBytes = 0;
  received = 0;
  fail: Partial<Record<'host' | 'loadImage' | 'importArchive' | 'prepare' | 'restore' | 'ask', Error>> = {};
  /** The ids the next imports get (then 'target-checkpoint'). */
  importIds: string[] = [];
  /** The restore ran there although its answer failed (lost, or the source died before reading it). */
  restoredDespiteFailure = false;
  /** When set, a restore waits for it (to hold one in progress). */
  restoreGate: Promise<void> | undefined;
  /** Fails the import before reading a byte, as a refused connection does. */
  unreachable: Error | undefined;
  /** Called as a restore is asked, to look at the source at that moment. */
  onRestore: (() => void) | undefined;
  /** How many more deletes of the copy find a restore holding it. */
  inUseFor = 0;
  copies = new Set<string>();
  running = new Map<string, RestoredContainer>();
  /** What the target says of its post-copy support and of the caller's address. */
  postCopy: { ok: boolean; reason?: string } = { ok: true };
  /** For a lazy restore: how its pages stand when asked, one answer a question (the last repeats). */
  pageStates: ('loading' | 'complete' | 'failed')[] = ['complete'];
  lazyAsked: unknown;
  /** The engine the target's cryo manages; undefined: an older agent, which names none. */
  engine: 'docker' | 'podman' | undefined = undefined;

  async host(): Promise<HostInfoReport> {
    this.calls.push('host');
    if (this.fail.host) throw this.fail.host;
    return {
      ...localHost(),
      criuVersion: await new FakeEngine().version(),
      dockerVersion: '20.10.24',
      freeBytes: 1e12,
      minFreeBytes: this.minFreeBytes,
      postCopy: this.postCopy,
      peerAddress: '::ffff:127.0.0.1',
      ...(this.engine ? { engine: this.engine } : {}),
    };
  }

  async hasImage(): Promise<boolean> {
    return this.hasTheImage;
  }

  async loadImage(): Promise<void> {
    this.calls.push('loadImage');
    if (this.fail.loadImage) throw this.fail.loadImage;
  }

  /** The migration each import was marked with, in order. */
  importedFor: string[] = [];

  async importArchive(archive: Readable, migrationId: string): Promise<Checkpoint> {
    this.calls.push('import');
    this.importedFor.push(migrationId);
    if (this.unreachable) throw this.unreachable;
    for await (const chunk of archive) this.received += (chunk as Buffer).length;
    if (this.fail.importArchive) throw this.fail.importArchive;
    const id = this.importIds.shift() ?? 'target-checkpoint';
    this.copies.add(id);
    return { id } as Checkpoint;
  }

  async prepare(seedCheckpointId: string, name: string): Promise<PreparedContainer> {
    this.calls.push(`prepare ${seedCheckpointId} ${name}`);
    if (this.fail.prepare) throw this.fail.prepare;
    return { container: { id: PREPARED, name }, expiresAt: new Date().toISOString() };
  }

  async restore(
    checkpointId: string,
    name: string,
    options: PeerRestoreOptions = {},
  ): Promise<RestoreResult> {
    this.calls.push(`restore ${checkpointId} ${name}${options.prepared ? ` into ${options.prepared}` : ''}`);
    this.lazyAsked = options.lazyPages;
    this.onRestore?.();
    if (this.restoreGate) await this.restoreGate;
    const container = { id: 't'.repeat(64), name };
    if (!this.fail.restore || this.restoredDespiteFailure)
      this.running.set(checkpointId, { ...container, running: true, restoredFrom: checkpointId });
    if (this.fail.restore) throw this.fail.restore;
    return { container, restoreMs: 1 };
  }

  async deleteCheckpoint(checkpointId: string): Promise<CheckpointRemoval> {
    this.calls.push(`delete ${checkpointId}`);
    if (this.fail.ask) throw this.fail.ask;
    if (this.inUseFor > 0) {
      this.inUseFor--;
      return 'in-use';
    }
    return this.copies.delete(checkpointId) ? 'deleted' : 'absent';
  }

  async findCheckpoint(name: string): Promise<Checkpoint | undefined> {
    this.calls.push(`find ${name}`);
    return undefined;
  }

  async restoredContainers(checkpointId: string): Promise<RestoredContainer[]> {
    this.calls.push(`ask ${checkpointId}`);
    if (this.fail.ask) throw this.fail.ask;
    const c = this.running.get(checkpointId);
    if (!c || this.lazyAsked === undefined) return c ? [c] : [];
    const pages = this.pageStates.length > 1 ? this.pageStates.shift()! : this.pageStates[0]!;
    // A container whose pages failed has been killed there.
    if (pages === 'failed') c.running = false;
    return [{ ...c, pages }];
  }
}

interface Ctx {
  dir: string;
  db: Db;
  peer: FakePeer;
  runtime: FakeRuntime;
  services: Awaited<ReturnType<typeof fakeServices>>;
}
const test = anyTest as TestFn<Ctx>;
const SOURCE = 'c'.repeat(64);
const PREPARED = 'e'.repeat(64);

test.beforeEach(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-migration-'));
  const db = openDatabase(path.join(dir, 'cryo.db'));
  const peer = new FakePeer();
  const services = await fakeServices(dir, db, systemClock, undefined, () => peer);
  services.runtime.add({ id: SOURCE, name: 'web' });
  t.context = { dir, db, peer, runtime: services.runtime, services };
});

test.afterEach.always(async (t) => {
  t.context.db.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

async function finished(ctx: Ctx, id: string): Promise<Migration> {
  for (let i = 0; i < 500; i++) {
    const m = ctx.services.migrations.get(id);
    if (m.status !== 'running') return m;
    await sleep(10);
  }
  throw new Error(`migration ${id} did not end`);
}

const start = (ctx: Ctx, body: Partial<CreateMigrationBody> = {}) =>
  ctx.services.migrations.start('web', {
    target: ctx.peer.url,
    targetToken: 'x'.repeat(16),
    keepSource: false,
    strategy: 'stop-and-copy',
    diskPreCopy: false,
    ...body,
  });

test('a migration that succeeds streams the checkpoint, restores on the target and removes the source', async (t) => {
  const { peer, runtime } = t.context;
  let sourceAtRestore: unknown;
  peer.onRestore = () =>
    (sourceAtRestore = {
      frozen: runtime.frozen.has(SOURCE),
      running: runtime.containers.get(SOURCE)?.running,
    });
  const m = await finished(t.context, (await start(t.context)).id);
  t.deepEqual(
    sourceAtRestore,
    { frozen: true, running: true },
    'the source waits frozen, as its dump left it',
  );
  t.true(runtime.calls.includes(`stopFrozen ${SOURCE}`), 'then it is stopped without running again');
  t.false(runtime.calls.includes(`thawFrozen ${SOURCE}`));
  t.is(m.status, 'succeeded');
  t.deepEqual(
    m.phases.map((p) => `${p.name} ${p.status}`),
    ['preflight done', 'image skipped', 'checkpoint done', 'stream done', 'restore done', 'finish done'],
  );
  t.deepEqual(t.context.peer.calls, ['host', 'import', 'restore target-checkpoint web']);
  t.true(t.context.peer.received > 0);
  t.is(m.bytesSent, t.context.peer.received, 'every byte sent is counted');
  t.is(m.targetContainer?.name, 'web');
  t.false(t.context.runtime.containers.has(SOURCE), 'the source container is gone');
  t.truthy(m.checkpointId && t.context.services.checkpoints.get(m.checkpointId), 'the checkpoint is kept');
  t.deepEqual(
    t.context.services.checkpoints.get(m.checkpointId!).migration,
    { id: m.id },
    'marked as its own',
  );
  t.deepEqual(t.context.peer.importedFor, [m.id], "the target's copy is marked too");
});

test('a target refused at the pre-flight fails the request and touches nothing', async (t) => {
  t.context.peer.fail.host = new TargetError(ErrorCode.TARGET_UNAUTHORIZED, 'no', 'token');
  const err = await t.throwsAsync(start(t.context), { instanceOf: TargetError });
  t.is(err?.code, ErrorCode.TARGET_UNAUTHORIZED);
  const [m] = t.context.services.migrations.list();
  t.like(m, { status: 'failed', error: { phase: 'preflight', code: ErrorCode.TARGET_UNAUTHORIZED } });
  t.deepEqual(t.context.runtime.calls, [], 'nothing was checkpointed');
  t.true(t.context.runtime.containers.get(SOURCE)?.running);
  t.deepEqual(t.context.services.checkpoints.list(), []);
});

test('a target of another engine (Podman) gets the migration as any other: the disk pre-copy, cryo’s archive, the restore', async (t) => {
  t.context.peer.engine = 'podman';
  const m = await finished(t.context, (await start(t.context, { diskPreCopy: true })).id);
  t.is(m.status, 'succeeded', JSON.stringify(m.error));
  t.like(
    m.phases.find((p) => p.name === 'precopy'),
    { status: 'done' },
  );
  t.true(t.context.peer.calls.some((c) => c.startsWith('prepare ')));
  t.false(t.context.runtime.containers.has(SOURCE), 'the source container is gone');
});

test('a failed image transfer ends the migration before anything is frozen', async (t) => {
  t.context.peer.hasTheImage = false;
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'failed', error: { phase: 'image' } });
  t.false(t.context.runtime.calls.some((c) => c.startsWith('checkpoint')));
  t.true(t.context.runtime.containers.get(SOURCE)?.running);
});

test('a failed stream rolls back: the source, held frozen, runs on from its freeze; the checkpoint stays', async (t) => {
  const { runtime } = t.context;
  t.context.peer.fail.importArchive = new TargetError(ErrorCode.TARGET_REFUSED, 'full', 'free space');
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'stream', code: ErrorCode.TARGET_REFUSED } });
  t.deepEqual(runtime.calls.slice(-1), [`thawFrozen ${SOURCE}`], 'a thaw, no restore');
  t.false(runtime.calls.includes(`restore ${SOURCE}`));
  t.false(runtime.frozen.has(SOURCE));
  t.true(runtime.containers.get(SOURCE)?.running);
  t.truthy(t.context.services.checkpoints.get(m.checkpointId!));
});

test('without a runtime that can hold it frozen, the source stops, and a failed stream restores it from its checkpoint', async (t) => {
  t.context.runtime.holds = false;
  t.context.peer.fail.importArchive = new TargetError(ErrorCode.TARGET_REFUSED, 'full', 'free space');
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'stream', code: ErrorCode.TARGET_REFUSED } });
  t.deepEqual(t.context.runtime.calls.slice(-1), [`restore ${SOURCE}`]);
  t.true(t.context.runtime.containers.get(SOURCE)?.running, 'the workload runs again here');
  t.false(
    t.context.peer.calls.some((c) => c.startsWith('delete')),
    'the target kept nothing to delete',
  );
  t.truthy(t.context.services.checkpoints.get(m.checkpointId!));
  t.is(m.phases.at(-1)?.name, 'rollback');
});

test('a failed restore on the target rolls back and deletes the target copy', async (t) => {
  t.context.peer.fail.restore = new TargetError(ErrorCode.TARGET_REFUSED, 'criu failed', 'see log');
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'restore' } });
  t.true(t.context.peer.calls.includes('delete target-checkpoint'));
  t.true(t.context.runtime.containers.get(SOURCE)?.running);
  t.truthy(
    t.context.services.checkpoints.get(m.checkpointId!),
    'a failed migration never destroys the checkpoint',
  );
});

test('a rollback that fails too says both, and keeps the checkpoint', async (t) => {
  t.context.runtime.holds = false;
  t.context.peer.fail.restore = new TargetError(ErrorCode.TARGET_REFUSED, 'criu failed', 'see log');
  t.context.runtime.failRestore = new Error('restore broke');
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'failed', error: { phase: 'restore' } });
  t.regex(m.error?.message ?? '', /criu failed; then the rollback failed: restore broke/);
  t.truthy(t.context.services.checkpoints.get(m.checkpointId!));
});

test('a second migration of the same container is refused while one runs', async (t) => {
  let release!: () => void;
  t.context.runtime.checkpointGate = new Promise((r) => (release = r));
  const first = await start(t.context);
  const err = await t.throwsAsync(start(t.context));
  t.is((err as { code?: string }).code, ErrorCode.MIGRATION_IN_PROGRESS);
  release();
  t.is((await finished(t.context, first.id)).status, 'succeeded');
});

test('a restore that ran on the target although its answer was lost ends succeeded: the source goes, nothing runs twice', async (t) => {
  t.context.peer.fail.restore = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'reset', 'network');
  t.context.peer.restoredDespiteFailure = true;
  const m = await finished(t.context, (await start(t.context)).id);
  t.is(m.status, 'succeeded', JSON.stringify(m.error));
  t.deepEqual(m.phases.map((p) => `${p.name} ${p.status}`).slice(-3), [
    'restore failed',
    'reconcile done',
    'finish done',
  ]);
  t.is(m.targetContainer?.name, 'web');
  t.false(t.context.runtime.containers.has(SOURCE), 'the source is gone, not restored');
  t.false(t.context.runtime.calls.includes(`restore ${SOURCE}`));
  t.false(
    t.context.peer.calls.some((c) => c.startsWith('delete')),
    "the target's copy stays",
  );
});

test('a target still restoring its copy is asked again until that restore has ended', async (t) => {
  t.context.peer.fail.restore = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'timeout', 'network');
  t.context.peer.inUseFor = 2;
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'restore', code: ErrorCode.TARGET_UNREACHABLE } });
  t.is(t.context.peer.calls.filter((c) => c === 'delete target-checkpoint').length, 3);
  t.false(t.context.peer.copies.has('target-checkpoint'), 'the copy is gone before the source runs again');
  t.true(t.context.runtime.containers.get(SOURCE)?.running);
});

test('a target that cannot answer keeps the source stopped until it does; then the source runs again', async (t) => {
  const { peer, runtime } = t.context;
  peer.fail.restore = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'reset', 'network');
  peer.fail.ask = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'refused', 'network');
  const { id } = await start(t.context);
  for (let i = 0; i < 200 && peer.calls.filter((c) => c.startsWith('ask')).length < 5; i++) await sleep(5);
  const waiting = t.context.services.migrations.get(id);
  t.is(waiting.status, 'running');
  t.is(waiting.phases.at(-1)?.name, 'reconcile');
  t.regex(waiting.phases.at(-1)?.detail ?? '', /waiting for the target to answer: refused/);
  t.true(runtime.frozen.has(SOURCE), 'the source waits, frozen');
  delete peer.fail.ask;
  const m = await finished(t.context, id);
  t.is(m.status, 'rolled_back');
  t.true(runtime.containers.get(SOURCE)?.running);
  t.false(runtime.frozen.has(SOURCE));
  t.false(runtime.calls.includes(`restore ${SOURCE}`));
});

test('a target silent past the settle deadline: the source, held frozen, thaws and runs on; the migration rolls back saying why', async (t) => {
  const { peer, runtime } = t.context;
  t.context.services = await fakeServices(
    t.context.dir,
    t.context.db,
    systemClock,
    runtime,
    () => peer,
    undefined,
    {
      migrationSettleTimeoutMs: 200,
    },
  );
  peer.fail.restore = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'reset', 'network');
  peer.fail.ask = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'refused', 'network');
  const started = performance.now();
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'restore', code: ErrorCode.DEADLINE_EXCEEDED } });
  t.regex(m.error?.message ?? '', /an answer from the target .* did not finish within 0\.2 s/);
  t.true(performance.now() - started < 5_000);
  t.true(runtime.containers.get(SOURCE)?.running);
  t.false(runtime.frozen.has(SOURCE), 'thawed');
  t.true(runtime.calls.includes(`thawFrozen ${SOURCE}`));
});

/** A cryo killed mid-migration: the first services stay stuck where `hold` holds them, a second set takes over. */
async function restartAfterCrash(t: { context: Ctx }, hold: (ctx: Ctx) => Promise<void>) {
  const ctx = t.context;
  const journal = new SqliteHostJournal(ctx.db);
  const first = await fakeServices(ctx.dir, ctx.db, systemClock, ctx.runtime, () => ctx.peer, journal);
  const started = await first.migrations.start('web', {
    target: ctx.peer.url,
    targetToken: 'x'.repeat(16),
    keepSource: false,
    strategy: 'stop-and-copy',
    diskPreCopy: false,
  });
  await hold(ctx);
  const again = await fakeServices(ctx.dir, ctx.db, systemClock, ctx.runtime, () => ctx.peer, journal);
  t.context.services = again;
  again.migrations.resumeInterrupted();
  return { m: await finished(t.context, started.id), journal };
}

const openMigrations = (journal: SqliteHostJournal) =>
  journal.pending().filter((e) => e.intent.kind === HostIntentKind.MIGRATION_SOURCE);
const heldFreezes = (journal: SqliteHostJournal) =>
  journal.pending().filter((e) => e.intent.kind === HostIntentKind.FROZEN);

const restoreUnderWay = async (ctx: Ctx) => {
  ctx.peer.restoreGate = new Promise(() => undefined);
  for (let i = 0; i < 200 && !ctx.peer.calls.some((c) => c.startsWith('restore')); i++) await sleep(5);
};

test('after a crash while the target restored, a target that runs the workload makes the migration succeed', async (t) => {
  const { m, journal } = await restartAfterCrash(t, async (ctx) => {
    await restoreUnderWay(ctx);
    ctx.peer.running.set('target-checkpoint', {
      id: 't'.repeat(64),
      name: 'web',
      running: true,
      restoredFrom: 'target-checkpoint',
    });
  });
  t.is(m.status, 'succeeded');
  t.true(t.context.runtime.calls.includes(`stopFrozen ${SOURCE}`), 'the frozen source never ran again');
  t.false(t.context.runtime.containers.has(SOURCE), 'the stopped source is removed');
  t.deepEqual(openMigrations(journal), [], 'the journal entry ended');
  t.deepEqual(heldFreezes(journal), []);
});

test('after a crash while the target restored, a target without the workload makes the source run it again', async (t) => {
  const { m, journal } = await restartAfterCrash(t, restoreUnderWay);
  t.like(m, { status: 'rolled_back', error: { code: ErrorCode.MIGRATION_INTERRUPTED } });
  t.true(t.context.runtime.containers.get(SOURCE)?.running);
  t.false(t.context.runtime.frozen.has(SOURCE), 'thawed, once the copy is gone');
  t.false(t.context.runtime.calls.includes(`restore ${SOURCE}`));
  t.false(t.context.peer.copies.has('target-checkpoint'), "the target's copy is deleted first");
  t.truthy(t.context.services.checkpoints.get(m.checkpointId!));
  t.deepEqual(openMigrations(journal), []);
  t.deepEqual(heldFreezes(journal), []);
});

test('after a crash before the checkpoint was complete, the migration ends failed without asking the target', async (t) => {
  const { m, journal } = await restartAfterCrash(t, async (ctx) => {
    ctx.runtime.checkpointGate = new Promise(() => undefined);
    for (let i = 0; i < 200 && !ctx.runtime.calls.some((c) => c.startsWith('checkpoint')); i++)
      await sleep(5);
  });
  t.like(m, { status: 'failed', error: { phase: 'checkpoint', code: ErrorCode.MIGRATION_INTERRUPTED } });
  t.false(t.context.peer.calls.some((c) => c.startsWith('ask') || c.startsWith('delete')));
  t.deepEqual(openMigrations(journal), []);
});

test('after a crash between the dump and its checkpoint, the source held frozen is thawed and the migration fails', async (t) => {
  const { m, journal } = await restartAfterCrash(t, async (ctx) => {
    ctx.runtime.heldGate = new Promise(() => undefined);
    for (let i = 0; i < 200 && !ctx.runtime.frozen.has(SOURCE); i++) await sleep(5);
  });
  t.like(m, { status: 'failed', error: { phase: 'checkpoint', code: ErrorCode.MIGRATION_INTERRUPTED } });
  t.false(t.context.runtime.frozen.has(SOURCE));
  t.true(t.context.runtime.containers.get(SOURCE)?.running, 'it runs on from its freeze');
  t.deepEqual(heldFreezes(journal), []);
  t.deepEqual(openMigrations(journal), []);
});

test('a source whose stop failed after the target ran the workload is stopped at the next start, never thawed', async (t) => {
  const ctx = t.context;
  const journal = new SqliteHostJournal(ctx.db);
  const first = await fakeServices(ctx.dir, ctx.db, systemClock, ctx.runtime, () => ctx.peer, journal);
  ctx.runtime.failStopFrozen = new Error('runc kill failed');
  const started = await first.migrations.start('web', {
    target: ctx.peer.url,
    targetToken: 'x'.repeat(16),
    keepSource: false,
    strategy: 'stop-and-copy',
    diskPreCopy: false,
  });
  for (let i = 0; i < 500 && first.migrations.get(started.id).status === 'running'; i++) await sleep(10);
  t.is(first.migrations.get(started.id).status, 'succeeded');
  t.true(ctx.runtime.frozen.has(SOURCE), 'still frozen: it does not run');
  t.is(heldFreezes(journal).length, 1);
  delete ctx.runtime.failStopFrozen;
  const again = await fakeServices(ctx.dir, ctx.db, systemClock, ctx.runtime, () => ctx.peer, journal);
  again.migrations.resumeInterrupted();
  for (let i = 0; i < 200 && heldFreezes(journal).length > 0; i++) await sleep(5);
  t.deepEqual(heldFreezes(journal), []);
  t.false(ctx.runtime.containers.get(SOURCE)?.running);
  t.false(ctx.runtime.calls.includes(`thawFrozen ${SOURCE}`), 'never thawed to run');
});

test('a target that never reads the stream leaves the checkpoint free: no export holds it after the rollback', async (t) => {
  t.context.peer.unreachable = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'refused', 'network');
  const m = await finished(t.context, (await start(t.context)).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'stream' } });
  t.false(t.context.services.checkpoints.isInUse(m.checkpointId!));
  await t.notThrowsAsync(t.context.services.checkpoints.remove(m.checkpointId!));
});

test('a target whose disk floor leaves no room for the checkpoint is refused before anything is frozen', async (t) => {
  t.context.peer.minFreeBytes = 1e12 - 1024;
  const err = await t.throwsAsync(start(t.context));
  t.is((err as { code?: string }).code, ErrorCode.TARGET_NO_SPACE);
  t.regex(err?.message ?? '', /must stay free there/);
  t.false(t.context.runtime.calls.some((c) => c.startsWith('checkpoint')));
  t.true(t.context.runtime.containers.get(SOURCE)?.running);
});

test('a migration whose checkpoint was deleted before it could settle ends failed, and cryo keeps running', async (t) => {
  const { peer, services } = t.context;
  let fail!: () => void;
  peer.restoreGate = new Promise((resolve) => (fail = resolve));
  peer.fail.restore = new TargetError(ErrorCode.TARGET_REFUSED, 'criu failed', 'see log');
  const { id } = await start(t.context);
  for (let i = 0; i < 200 && !peer.calls.some((c) => c.startsWith('restore')); i++) await sleep(5);
  await services.checkpoints.remove(services.migrations.get(id).checkpointId!);
  fail();
  const m = await finished(t.context, id);
  t.like(m, { status: 'failed', error: { phase: 'restore' } });
  t.regex(m.error?.message ?? '', /criu failed; then settling it failed: .*no checkpoint/);
});

const startWith = (ctx: Ctx, strategy: 'post-copy' | 'auto') => start(ctx, { strategy });

test('post-copy: the target runs the workload at once, the source stays frozen until every page is in, then goes', async (t) => {
  const { peer, runtime, services } = t.context;
  peer.pageStates = ['loading', 'loading', 'complete'];
  let sourceAtRestore: unknown;
  peer.onRestore = () => (sourceAtRestore = runtime.frozen.has(SOURCE));
  const m = await finished(t.context, (await startWith(t.context, 'post-copy')).id);
  t.is(m.status, 'succeeded', JSON.stringify(m.error));
  t.deepEqual(m.strategy, { requested: 'post-copy', used: 'post-copy' });
  t.deepEqual(
    m.phases.map((p) => `${p.name} ${p.status}`),
    [
      'preflight done',
      'image skipped',
      'checkpoint done',
      'stream done',
      'restore done',
      'pages done',
      'finish done',
    ],
  );
  t.true(sourceAtRestore as boolean);
  t.like(peer.lazyAsked, { address: '127.0.0.1' }, 'the page server, at the address the target sees');
  t.true(runtime.calls.some((c) => c.startsWith(`serve pages ${SOURCE} 127.0.0.1:`)));
  t.is(peer.calls.filter((c) => c.startsWith('ask')).length, 3, 'asked until every page was in');
  t.true(runtime.calls.includes(`stopFrozen ${SOURCE}`));
  t.false(runtime.containers.has(SOURCE));
  t.deepEqual(services.checkpoints.list(), [], 'a checkpoint without its pages is not kept');
  t.true(peer.calls.includes('delete target-checkpoint'), "nor the target's copy");
  t.is(m.targetContainer?.name, 'web');
});

test('post-copy: a target that lost its container for want of pages makes the source thaw and run on', async (t) => {
  const { peer, runtime } = t.context;
  peer.pageStates = ['loading', 'failed'];
  const m = await finished(t.context, (await startWith(t.context, 'post-copy')).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'pages', code: ErrorCode.MIGRATION_INTERRUPTED } });
  t.true(runtime.calls.includes(`abort page server ${SOURCE}`), 'the page server is ended before the thaw');
  t.true(runtime.calls.includes(`thawFrozen ${SOURCE}`));
  t.false(runtime.calls.includes(`stopFrozen ${SOURCE}`));
  t.true(runtime.containers.get(SOURCE)?.running);
  t.false(runtime.frozen.has(SOURCE));
  t.false(peer.copies.has('target-checkpoint'), "the target's copy is deleted");
});

test('post-copy where a host cannot is refused before anything is frozen; auto falls back and says why', async (t) => {
  const { peer, runtime } = t.context;
  peer.postCopy = { ok: false, reason: 'post-copy is turned off here (CRYO_POST_COPY=off)' };
  const err = await t.throwsAsync(startWith(t.context, 'post-copy'));
  t.is((err as { code?: string }).code, ErrorCode.POST_COPY_UNAVAILABLE);
  t.regex(err!.message, /the target: post-copy is turned off here/);
  t.false(runtime.calls.some((c) => c.startsWith('checkpoint')));

  const m = await finished(t.context, (await startWith(t.context, 'auto')).id);
  t.is(m.status, 'succeeded');
  t.like(m.strategy, { requested: 'auto', used: 'stop-and-copy' });
  t.regex(m.strategy?.fallback ?? '', /the target: post-copy is turned off here/);
  t.is(peer.lazyAsked, undefined);
});

test("post-copy to a target whose dockerd lacks cryo's runtime is refused before anything is frozen; auto picks stop-and-copy", async (t) => {
  const { peer, runtime, services } = t.context;
  // What such a target's GET /v1/host says (its HostService over a dockerd without cryo's runtime).
  runtime.cryoRuntime = false;
  peer.postCopy = (await services.host.report()).postCopy!;
  runtime.cryoRuntime = true;
  const err = await t.throwsAsync(startWith(t.context, 'post-copy'));
  t.is((err as { code?: string }).code, ErrorCode.POST_COPY_UNAVAILABLE);
  t.regex(err!.message, /the target: its dockerd lacks cryo's runtime/);
  t.regex((err as { hint?: string }).hint ?? '', /setup-host\.sh/);
  t.false(
    runtime.calls.some((c) => c.startsWith('checkpoint')),
    'nothing was frozen',
  );
  t.false(runtime.frozen.has(SOURCE));

  const m = await finished(t.context, (await startWith(t.context, 'auto')).id);
  t.is(m.status, 'succeeded');
  t.like(m.strategy, { requested: 'auto', used: 'stop-and-copy' });
  t.regex(m.strategy?.fallback ?? '', /cryo's runtime/);
});

test('auto keeps stop-and-copy for a container whose memory is under the threshold, or that cannot be held frozen', async (t) => {
  const small = await finished(t.context, (await startWith(t.context, 'auto')).id);
  t.like(small.strategy, { requested: 'auto', used: 'stop-and-copy' });
  t.regex(small.strategy?.fallback ?? '', /under the post-copy threshold \(256 MiB\)/);
  t.context.runtime.add({ id: 'd'.repeat(64), name: 'web' });
  t.context.runtime.containers.delete(SOURCE);
  t.context.runtime.holds = false;
  const err = await t.throwsAsync(startWith(t.context, 'post-copy'));
  t.regex(err!.message, /not dumped through runc here/);
});

const startPreCopy = (ctx: Ctx) => start(ctx, { diskPreCopy: true });

test('disk pre-copy: the seed goes and the target prepares its container before the freeze; the changes restore into it', async (t) => {
  const { peer, runtime, services } = t.context;
  peer.importIds = ['target-seed'];
  let frozenAtPrepare: boolean | undefined;
  const prepare = peer.prepare.bind(peer);
  peer.prepare = async (seed, name) => {
    frozenAtPrepare = runtime.frozen.has(SOURCE);
    return prepare(seed, name);
  };
  const m = await finished(t.context, (await startPreCopy(t.context)).id);
  t.is(m.status, 'succeeded');
  t.false(frozenAtPrepare, 'the source ran while its disk was sent');
  t.deepEqual(
    m.phases.map((p) => `${p.name} ${p.status}`),
    [
      'preflight done',
      'image skipped',
      'precopy done',
      'checkpoint done',
      'stream done',
      'restore done',
      'finish done',
    ],
  );
  t.deepEqual(peer.calls.slice(0, 5), [
    'host',
    'import',
    'prepare target-seed web',
    'import',
    `restore target-checkpoint web into ${PREPARED}`,
  ]);
  t.like(m.precopy, { targetCheckpointId: 'target-seed', preparedContainer: PREPARED });
  t.is(m.bytesSent, peer.received, 'the seed and the checkpoint are counted');
  t.true(peer.calls.includes('delete target-seed'), "the target's seed goes");
  t.true(
    peer.calls.includes('delete target-checkpoint'),
    'and its changes checkpoint, which nothing restores',
  );
  t.deepEqual(
    services.checkpoints.list().map((c) => c.diskPreCopy?.part),
    ['changes'],
    'here, the changes checkpoint stays (it restores in place); the seed goes',
  );
});

test('disk pre-copy: a target that cannot prepare fails the migration before anything is frozen, and the seeds go', async (t) => {
  const { peer, runtime, services } = t.context;
  peer.importIds = ['target-seed'];
  peer.fail.prepare = new TargetError(ErrorCode.TARGET_REFUSED, 'no such image', 'load it');
  const m = await finished(t.context, (await startPreCopy(t.context)).id);
  t.like(m, { status: 'failed', error: { phase: 'precopy', code: ErrorCode.TARGET_REFUSED } });
  t.false(
    runtime.calls.some((c) => c.startsWith('checkpoint')),
    'nothing was frozen',
  );
  t.true(runtime.containers.get(SOURCE)?.running);
  t.true(peer.calls.includes('delete target-seed'));
  t.deepEqual(services.checkpoints.list(), [], 'the local seed is gone too');
});

test('disk pre-copy: a failed restore rolls back with a thaw, and the seed goes from both hosts', async (t) => {
  const { peer, runtime, services } = t.context;
  peer.importIds = ['target-seed'];
  peer.fail.restore = new TargetError(ErrorCode.TARGET_REFUSED, 'criu failed', 'see log');
  const m = await finished(t.context, (await startPreCopy(t.context)).id);
  t.like(m, { status: 'rolled_back', error: { phase: 'restore' } });
  t.true(runtime.calls.includes(`thawFrozen ${SOURCE}`));
  t.true(runtime.containers.get(SOURCE)?.running);
  t.true(peer.calls.includes('ask target-seed'), 'the container prepared from the seed is asked about too');
  t.true(peer.calls.includes('delete target-checkpoint'));
  t.true(peer.calls.includes('delete target-seed'));
  t.deepEqual(
    services.checkpoints.list().map((c) => c.id),
    [m.checkpointId],
    'the checkpoint stays; the seed goes',
  );
});

test('disk pre-copy: a restore that ran into the prepared container although its answer was lost ends succeeded', async (t) => {
  const { peer, runtime } = t.context;
  peer.importIds = ['target-seed'];
  peer.fail.restore = new TargetError(ErrorCode.TARGET_UNREACHABLE, 'socket hang up', 'network');
  peer.restoredDespiteFailure = true;
  // The prepared container carries its seed's id: that is where the target finds it running.
  const restore = peer.restore.bind(peer);
  peer.restore = async (id, name, options) => {
    try {
      return await restore(id, name, options);
    } finally {
      const c = peer.running.get(id);
      if (c) {
        peer.running.delete(id);
        peer.running.set('target-seed', { ...c, restoredFrom: 'target-seed' });
      }
    }
  };
  const m = await finished(t.context, (await startPreCopy(t.context)).id);
  t.is(m.status, 'succeeded');
  t.false(runtime.containers.has(SOURCE), 'the source goes: nothing runs twice');
});
