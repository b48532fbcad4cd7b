import { mkdtemp, rm } from 'node:fs/promises';
import { TEST_HOST } from './fakes.js';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { openDatabase, type Db } from '../../src/adapters/store/database.js';
import { SqliteCheckpointCatalog } from '../../src/adapters/store/sqlite-checkpoint-catalog.js';
import { SqliteHostJournal } from '../../src/adapters/store/sqlite-host-journal.js';
import { FsImageStore } from '../../src/adapters/store/fs-image-store.js';
import { DockerError, ErrorCode, type AppError } from '../../src/domain/errors/index.js';
import { LABEL_RESTORED_FROM } from '../../src/domain/labels.js';
import { HostIntentKind, type HostIntent } from '../../src/domain/host-intent.js';
import { CheckpointService } from '../../src/services/checkpoint/checkpoint-service.js';
import type { HostStateUndo } from '../../src/services/ports/host-journal.js';
import { newId } from '../../src/services/support/ids.js';
import { recoverHostState } from '../../src/services/host/recover-host-state.js';
import { FakeEngine, FakeRootfs, FakeRuntime } from './fakes.js';

interface Ctx {
  dir: string;
  db: Db;
  journal: SqliteHostJournal;
  catalog: SqliteCheckpointCatalog;
  runtime: FakeRuntime;
}
const test = anyTest as TestFn<Ctx>;

test.beforeEach(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-recovery-'));
  const db = openDatabase(path.join(dir, 'cryo.db'));
  t.context = {
    dir,
    db,
    journal: new SqliteHostJournal(db),
    catalog: new SqliteCheckpointCatalog(db),
    runtime: new FakeRuntime(),
  };
});

test.afterEach.always(async (t) => {
  t.context.db.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

class RecordingUndo implements HostStateUndo {
  undone: HostIntent[] = [];
  failOn: HostIntent['kind'] | undefined;
  async undo(intent: HostIntent): Promise<void> {
    if (intent.kind === this.failOn) throw new Error('dockerd is down');
    this.undone.push(intent);
  }
}

test('intents survive a reopened catalog and are undone newest first; an undo that fails stays for the next start', async (t) => {
  const { dir, journal } = t.context;
  journal.begin({ kind: HostIntentKind.CRIU_CONFIG, file: '/etc/criu/runc.conf', before: 'x\n' });
  const ended = journal.begin({ kind: HostIntentKind.FROZEN, containerId: 'a' });
  journal.end(ended);
  journal.begin({ kind: HostIntentKind.RESTART_POLICY, containerId: 'b', policy: { Name: 'always' } });
  journal.begin({ kind: HostIntentKind.CONTAINERD_TMP, tmpDir: '/tmp', before: [] });
  t.context.db.close();
  // As after kill -9: a new process opens the same catalog.
  t.context.db = openDatabase(path.join(dir, 'cryo.db'));
  const reopened = new SqliteHostJournal(t.context.db);
  t.is(reopened.pending().length, 3, 'an ended intent is gone, the others are kept');
  const undo = new RecordingUndo();
  undo.failOn = HostIntentKind.RESTART_POLICY;
  const first = await recoverHostState({
    journal: reopened,
    undo,
    catalog: new SqliteCheckpointCatalog(t.context.db),
    runtime: t.context.runtime,
  });
  t.deepEqual(
    undo.undone.map((i) => i.kind),
    [HostIntentKind.CONTAINERD_TMP, HostIntentKind.CRIU_CONFIG],
  );
  t.is(first.failed.length, 1);
  t.regex(first.failed[0]!.error, /dockerd is down/);
  t.deepEqual(
    reopened.pending().map((p) => p.intent.kind),
    [HostIntentKind.RESTART_POLICY],
  );
  undo.failOn = undefined;
  const second = await recoverHostState({
    journal: reopened,
    undo,
    catalog: new SqliteCheckpointCatalog(t.context.db),
    runtime: t.context.runtime,
  });
  t.is(second.undone.length, 1);
  t.deepEqual(reopened.pending(), []);
});

test('a container stopped by an unpublished stop-mode checkpoint is started again; a published one is left stopped', async (t) => {
  const { journal, catalog, runtime } = t.context;
  const [lost, kept] = [newId(Date.now()), newId(Date.now() + 1)];
  runtime.add({ id: 'a'.repeat(64), name: 'lost', running: false, state: 'exited' });
  runtime.add({ id: 'b'.repeat(64), name: 'kept', running: false, state: 'exited' });
  journal.begin({
    kind: HostIntentKind.STOP_MODE_CHECKPOINT,
    containerId: 'a'.repeat(64),
    checkpointId: lost,
  });
  catalog.add({
    id: kept,
    name: 'kept',
    kind: 'container',
    container: { id: 'b'.repeat(64), name: 'kept', image: 'img:1' },
    createdAt: new Date(0).toISOString(),
    leaveRunning: false,
    sizeBytes: 1,
    stats: { dumpMs: 1, totalMs: 1 },
    status: 'complete',
  });
  journal.begin({
    kind: HostIntentKind.STOP_MODE_CHECKPOINT,
    containerId: 'b'.repeat(64),
    checkpointId: kept,
  });
  const recovery = await recoverHostState({ journal, undo: new RecordingUndo(), catalog, runtime });
  t.deepEqual(recovery.failed, []);
  t.is(recovery.undone.length, 2);
  t.true(runtime.containers.get('a'.repeat(64))?.running, 'the workload runs again');
  t.false(runtime.containers.get('b'.repeat(64))?.running, 'its checkpoint was published: it stays stopped');
});

test('a stop-mode checkpoint that fails after its dump starts the container again, says so, and leaves no intent', async (t) => {
  const { dir, journal, catalog, runtime } = t.context;
  const store = new FsImageStore(path.join(dir, 'store'));
  await store.init();
  const service = new CheckpointService({
    host: TEST_HOST,
    runtime,
    engine: new FakeEngine(),
    catalog,
    store,
    rootfs: new FakeRootfs(),
    clock: { now: () => Date.now() },
    journal,
  });
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  runtime.failSettle = new DockerError('dockerd still reports the container running');
  const err = await t.throwsAsync<AppError>(service.create('web', { leaveRunning: false }));
  t.is(err?.code, ErrorCode.DOCKER_FAILED);
  t.like(err?.details, { containerRestarted: true });
  t.true(runtime.containers.get('c'.repeat(64))?.running);
  t.deepEqual(journal.pending(), []);

  runtime.failSettle = undefined;
  await service.create('web', { leaveRunning: false });
  t.deepEqual(journal.pending(), [], 'a published checkpoint ends its intent');
  t.false(runtime.containers.get('c'.repeat(64))?.running, 'and the container stays stopped, as asked');
});

test("a restore's unanswered container is removed; a replacement left under its temporary name takes the name once the original is gone", async (t) => {
  const { journal, catalog, runtime } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'half-restored', running: true, state: 'running' });
  runtime.add({ id: 'd'.repeat(64), name: 'app.cryo-restore', running: true, state: 'running' });
  runtime.add({ id: 'e'.repeat(64), name: 'other.cryo-restore', running: true, state: 'running' });
  runtime.add({ id: 'f'.repeat(64), name: 'other', running: false, state: 'exited' });
  journal.begin({ kind: HostIntentKind.RESTORE_TARGET, containerId: 'c'.repeat(64) });
  journal.begin({ kind: HostIntentKind.REPLACEMENT_NAME, containerId: 'd'.repeat(64), name: 'app' });
  // The original "other" was not removed yet: its replacement keeps the temporary name.
  journal.begin({ kind: HostIntentKind.REPLACEMENT_NAME, containerId: 'e'.repeat(64), name: 'other' });
  const recovery = await recoverHostState({ journal, undo: new RecordingUndo(), catalog, runtime });
  t.is(recovery.failed.length, 0);
  t.is(await runtime.inspect('c'.repeat(64)), undefined);
  t.is((await runtime.inspect('d'.repeat(64)))?.name, 'app');
  t.is((await runtime.inspect('e'.repeat(64)))?.name, 'other.cryo-restore');
  t.is((await runtime.inspect('f'.repeat(64)))?.name, 'other');
  t.deepEqual(journal.pending(), []);
});

test('a restore target whose create cryo died during is removed by its name, only when it carries its label', async (t) => {
  const { journal, catalog, runtime } = t.context;
  runtime.add({
    id: 'a'.repeat(64),
    name: 'restored',
    running: false,
    state: 'created',
    labels: { [LABEL_RESTORED_FROM]: 'cp1' },
  });
  runtime.add({ id: 'b'.repeat(64), name: 'someone-elses', running: true, state: 'running' });
  journal.begin({ kind: HostIntentKind.RESTORE_TARGET_CREATING, name: 'restored', restoredFrom: 'cp1' });
  journal.begin({ kind: HostIntentKind.RESTORE_TARGET_CREATING, name: 'someone-elses', restoredFrom: 'cp1' });
  journal.begin({ kind: HostIntentKind.RESTORE_TARGET_CREATING, name: 'never-created', restoredFrom: 'cp1' });
  const recovery = await recoverHostState({ journal, undo: new RecordingUndo(), catalog, runtime });
  t.is(recovery.failed.length, 0);
  t.is(await runtime.inspect('restored'), undefined, 'Docker finished the create: the container goes');
  t.truthy(await runtime.inspect('someone-elses'), 'a container of that name without the label stays');
  t.deepEqual(journal.pending(), []);
});

test('a container kept frozen for a migration is left to that migration: recovery never thaws it', async (t) => {
  const { journal, catalog, runtime } = t.context;
  const undo = new RecordingUndo();
  journal.begin({ kind: HostIntentKind.FROZEN, containerId: 'a' });
  const held = journal.begin({ kind: HostIntentKind.FROZEN, containerId: 'b', heldBy: 'm1' });
  const recovery = await recoverHostState({ journal, undo, catalog, runtime });
  t.deepEqual(undo.undone, [{ kind: HostIntentKind.FROZEN, containerId: 'a' }]);
  t.deepEqual(
    recovery.undone.map((e) => e.intent),
    [{ kind: HostIntentKind.FROZEN, containerId: 'a' }],
  );
  t.deepEqual(
    journal.pending().map((e) => e.id),
    [held],
    'the migration ends it once the target has answered',
  );
});
