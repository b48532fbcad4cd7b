import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { TEST_HOST } from './fakes.js';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { FsImageStore } from '../../src/adapters/store/fs-image-store.js';
import { openDatabase, type Db } from '../../src/adapters/store/database.js';
import { SqliteCheckpointCatalog } from '../../src/adapters/store/sqlite-checkpoint-catalog.js';
import { TarArchiveCodec } from '../../src/adapters/archive/tar-archive-codec.js';
import { AppError, CriuError, DockerError, ErrorCode } from '../../src/domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR } from '../../src/domain/layout.js';
import { CheckpointService } from '../../src/services/checkpoint/checkpoint-service.js';
import { DiskGuard, type DiskFloor } from '../../src/services/support/disk-guard.js';
import type { ImageStore } from '../../src/services/ports/image-store.js';
import { readManifest } from '../../src/services/checkpoint/manifest.js';
import { newId } from '../../src/services/support/ids.js';
import type { SidecarService } from '../../src/services/sidecar/sidecar-service.js';
import type { ProcessInspector } from '../../src/services/ports/process-inspector.js';
import { FakeEngine, FakeRootfs, FakeRuntime } from './fakes.js';

interface Ctx {
  dir: string;
  /** Moves the injected clock on. */
  advance: (ms: number) => void;
  runtime: FakeRuntime;
  db: Db;
  service: CheckpointService;
  /** Directories describeEntries was called for. */
  described: string[];
}
const test = anyTest as TestFn<Ctx>;

test.beforeEach(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-svc-'));
  const runtime = new FakeRuntime();
  const db = openDatabase(path.join(dir, 'cryo.db'));
  const catalog = new SqliteCheckpointCatalog(db);
  const store = new FsImageStore(dir);
  await store.init();
  let now = 1_000_000;
  const clock = { now: () => (now += 5) };
  t.context = {
    dir,
    advance: (ms) => (now += ms),
    runtime,
    db,
    described: [],
    service: new CheckpointService({
      host: TEST_HOST,
      runtime,
      engine: new FakeEngine(),
      catalog,
      store,
      rootfs: new FakeRootfs(runtime.calls),
      clock,
      describeEntries: (d, known) => {
        t.context.described.push(d);
        return new TarArchiveCodec().describe(d, known);
      },
    }),
  };
});

test.afterEach.always(async (t) => {
  t.context.db.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

const code = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof AppError ? e.code : String(e)),
  );

test('a checkpoint is catalogued with its container, and stored under checkpoints/<id>', async (t) => {
  const { runtime, service, dir } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const cp = await service.create('web', { leaveRunning: false });
  t.is(cp.container!.name, 'web');
  t.is(cp.sizeBytes > 100, true);
  t.deepEqual((await readdir(path.join(dir, 'checkpoints', cp.id))).sort(), [
    'checkpoint',
    'config.dump',
    'cryo.json',
    'deleted.files',
    'docker-config.json',
    'rootfs-diff.tar',
    'spec.dump',
  ]);
  t.deepEqual(service.list({ container: 'web' }), [cp]);
  t.deepEqual(
    runtime.calls,
    [`checkpoint ${'c'.repeat(64)}`, `rootfs ${'c'.repeat(64)}`],
    'a stop-mode dump leaves nothing to thaw',
  );
});

test('a leave-running checkpoint reads the root filesystem while the workload is still frozen, unless told not to', async (t) => {
  const { runtime, service } = t.context;
  const id = 'd'.repeat(64);
  runtime.add({ id, name: 'api' });
  const held = await service.create('api', { leaveRunning: true });
  t.deepEqual(runtime.calls, [
    `checkpoint ${id}`,
    `hold frozen ${id}`,
    `rootfs ${id}`,
    `thaw ${id}`,
    `ensureNotFrozen ${id}`,
  ]);
  t.true((held.stats.pausedMs ?? 0) > 0, 'the whole pause is reported');
  runtime.calls.length = 0;
  await service.create('api', { leaveRunning: true, consistentRootfs: false });
  t.deepEqual(runtime.calls, [`checkpoint ${id}`, `ensureNotFrozen ${id}`, `rootfs ${id}`]);
});

test('entries are hashed during the checkpoint when asked (a migration), else on the first export, once', async (t) => {
  const { runtime, service, dir, described } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  // During the checkpoint the entries are hashed in its staging directory.
  const sent = await service.create('web', { leaveRunning: true }, { hashEntries: true });
  const sentDir = path.join(dir, 'checkpoints', sent.id);
  const entries = (await readManifest(sentDir)).entries;
  t.deepEqual(entries, await new TarArchiveCodec().describe(sentDir), 'what an export would list');
  t.true(entries.some((e) => e.name === 'config.dump' && e.sha256.length === 64));
  // CRIU's images first, while Docker handles the exit; then the rest, with the images' entries taken as they are.
  t.is(described[0], path.join(described[1]!, CHECKPOINT_IMAGES_DIR));
  t.is(described.length, 2, 'and nothing hashes it again');

  const plain = await service.create('web', { leaveRunning: true });
  const plainDir = path.join(dir, 'checkpoints', plain.id);
  t.deepEqual((await readManifest(plainDir)).entries, [], 'nothing hashed at checkpoint time');
  t.is(described.length, 2);
  const complete = await service.completeManifest(plain.id);
  t.deepEqual(complete.entries, await new TarArchiveCodec().describe(plainDir));
  t.deepEqual((await readManifest(plainDir)).entries, complete.entries, 'kept in cryo.json');
  await service.completeManifest(plain.id);
  t.deepEqual(described.slice(2), [plainDir], 'hashed once, for every export');
  t.deepEqual(
    (await readdir(plainDir)).filter((f) => f.startsWith('.')),
    [],
    'no temporary file left',
  );
});

test('a failed dump still thaws the container, and leaves no files and no catalog entry', async (t) => {
  const { runtime, service, dir } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  runtime.failCheckpoint = new CriuError('dump failed', ['Error (criu/sk-inet.c:200): Connected TCP socket']);
  t.is(await code(service.create('web', { leaveRunning: true })), ErrorCode.CRIU_FAILED);
  t.true(runtime.calls.includes(`ensureNotFrozen ${'c'.repeat(64)}`));
  t.deepEqual(await readdir(path.join(dir, 'staging')), []);
  t.deepEqual(await readdir(path.join(dir, 'checkpoints')), []);
  t.deepEqual(service.list(), []);
  runtime.failCheckpoint = undefined;
  await t.notThrowsAsync(service.create('web', { leaveRunning: true }), 'the lock was released');
});

test('a dump whose container Docker never shows stopped is not published, and leaves no files', async (t) => {
  const { runtime, service, dir } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  runtime.failSettle = new DockerError('dockerd still reports the container running');
  t.is(await code(service.create('web', { leaveRunning: false })), ErrorCode.DOCKER_FAILED);
  t.deepEqual(await readdir(path.join(dir, 'staging')), []);
  t.deepEqual(await readdir(path.join(dir, 'checkpoints')), []);
  t.deepEqual(service.list(), []);
});

test('refusals: unknown, stopped, duplicate name, docker without experimental', async (t) => {
  const { runtime, service } = t.context;
  t.is(await code(service.create('nope', { leaveRunning: false })), ErrorCode.CONTAINER_NOT_FOUND);
  runtime.add({ id: 's'.repeat(64), name: 'stopped', running: false, state: 'exited' });
  t.is(await code(service.create('stopped', { leaveRunning: false })), ErrorCode.CONTAINER_NOT_RUNNING);
  runtime.add({ id: 'p'.repeat(64), name: 'paused', paused: true, state: 'paused' });
  t.is(await code(service.create('paused', { leaveRunning: false })), ErrorCode.CONTAINER_NOT_RUNNING);
  runtime.add({ id: 'w'.repeat(64), name: 'web' });
  await service.create('web', { name: 'a', leaveRunning: true, includeVolumes: false });
  t.is(
    await code(service.create('web', { name: 'a', leaveRunning: true, includeVolumes: false })),
    ErrorCode.CHECKPOINT_NAME_IN_USE,
  );
  runtime.experimental = false;
  t.context.advance(5_000);
  t.is(await code(service.create('web', { leaveRunning: true })), ErrorCode.DOCKER_NOT_EXPERIMENTAL);
  t.false(runtime.calls.some((c) => c.startsWith('checkpoint') && c.includes('s'.repeat(64))));
});

test('a failed restore into a new container removes that container and keeps the checkpoint', async (t) => {
  const { runtime, service } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const cp = await service.create('web', { leaveRunning: true });
  runtime.failRestore = new CriuError('restore failed', ['Error: something']);
  t.is(await code(service.restore(cp.id, { name: 'copy', ports: 'free' })), ErrorCode.CRIU_FAILED);
  t.is(await runtime.inspect('copy'), undefined, 'the half-made container is gone');
  t.deepEqual(service.get(cp.id), cp, 'the checkpoint is kept');
  runtime.failRestore = undefined;
  const ok = await service.restore(cp.id, { name: 'copy', ports: 'free' });
  t.is(ok.container!.name, 'copy');
});

test('a restore into a new container applies the root-filesystem changes only when there are some', async (t) => {
  const { dir, db, runtime } = t.context;
  const rootfs = new FakeRootfs();
  const service = new CheckpointService({
    host: TEST_HOST,
    runtime,
    engine: new FakeEngine(),
    catalog: new SqliteCheckpointCatalog(db),
    store: new FsImageStore(dir),
    rootfs,
    clock: { now: () => Date.now() },
  });
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const unchanged = await service.create('web', { leaveRunning: true, name: 'unchanged' });
  const a = await service.restore(unchanged.id, { name: 'a', ports: 'free' });
  t.deepEqual(rootfs.applied, []);
  for (const found of [
    { changed: 1, deleted: 0 },
    { changed: 0, deleted: 1 },
  ]) {
    rootfs.found = found;
    const changed = await service.create('web', { leaveRunning: true, name: `changed-${found.changed}` });
    const b = await service.restore(changed.id, { name: `b-${found.changed}`, ports: 'free' });
    t.is(rootfs.applied.at(-1), b.container!.id);
  }
  t.is(rootfs.applied.length, 2);
  t.truthy(a.container);
});

test('restore in place needs the original container, stopped', async (t) => {
  const { runtime, service } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const cp = await service.create('web', { leaveRunning: true });
  t.is(await code(service.restore(cp.id, { ports: 'free' })), ErrorCode.CONTAINER_RUNNING);
  runtime.containers.delete('c'.repeat(64));
  const gone = await service.restore(cp.id, { ports: 'free' }).catch((e: AppError) => e);
  t.is((gone as AppError).code, ErrorCode.CONTAINER_NOT_FOUND);
  t.regex((gone as AppError).hint ?? '', /restore into a new one with \{"name"/);
  t.is(await code(service.restore('0000000000000000', { ports: 'free' })), ErrorCode.CHECKPOINT_NOT_FOUND);
});

test('ids sort by creation time and are valid checkpoint ids', (t) => {
  const a = newId(1_700_000_000_000);
  const b = newId(1_700_000_000_001);
  t.true(a < b);
  t.regex(a, /^[0-9a-z]{21}$/);
});

test('restore mode auto falls back to the operator state when the CRIU restore fails; mode process does not', async (t) => {
  const { runtime, dir } = t.context;
  const calls: string[] = [];
  const sidecar = {
    cut: async () => ({
      job: 'wc',
      checkpointId: 7,
      mode: 'exactly_once',
      subtasks: 2,
      stateBytes: 10,
      channel: undefined,
    }),
    finish: async (_pid: number, cut: { checkpointId: number }, outcome: 'complete' | 'abort') => {
      calls.push(`finish ${cut.checkpointId} ${outcome === 'complete'}`);
    },
    restore: async (pid: number) => {
      calls.push(`restore ${pid}`);
      return { checkpointId: 7, subtasks: 2 };
    },
  } as unknown as SidecarService;
  const other = path.join(dir, 'other');
  const db = openDatabase(path.join(dir, 'other.db'));
  t.teardown(() => db.close());
  const store = new FsImageStore(other);
  await store.init();
  let now = 2_000_000;
  const service = new CheckpointService({
    host: TEST_HOST,
    runtime,
    engine: new FakeEngine(),
    catalog: new SqliteCheckpointCatalog(db),
    store,
    rootfs: new FakeRootfs(),
    clock: { now: () => (now += 5) },
    sidecar,
  });
  runtime.add({ id: 'c'.repeat(64), name: 'wc' });
  const cp = await service.create('wc', { leaveRunning: true, application: true });
  t.deepEqual(cp.application, {
    job: 'wc',
    checkpointId: 7,
    mode: 'exactly_once',
    subtasks: 2,
    stateBytes: 10,
  });
  t.deepEqual(calls, ['finish 7 true'], 'complete only once the checkpoint is published');

  runtime.failRestore = new CriuError('restore failed', ['Error (criu/files-reg.c): File has bad size']);
  t.is(
    await code(service.restore(cp.id, { name: 'p', ports: 'free', mode: 'process' })),
    ErrorCode.CRIU_FAILED,
  );
  const auto = await service.restore(cp.id, { name: 'a', ports: 'free', mode: 'auto' });
  t.is(auto.mode, 'application');
  t.regex(auto.fallback ?? '', /^CRIU_FAILED/);
  t.deepEqual(auto.application, { checkpointId: 7, subtasks: 2 });
  t.true(runtime.calls.includes(`start ${auto.container!.id}`), 'the new container started afresh');
  t.true(runtime.files.has(`${auto.container!.id}:/run/cryo/restore.json`), 'with the restore marker');
  t.deepEqual(service.get(cp.id), cp, 'the checkpoint is kept');
});

test('a storage driver cryo cannot read is refused before anything is frozen: the container runs on', async (t) => {
  const { runtime, db, dir } = t.context;
  const rootfs = new FakeRootfs();
  rootfs.unsupported = 'overlayfs';
  const store = new FsImageStore(path.join(dir, 'other'));
  await store.init();
  const service = new CheckpointService({
    host: TEST_HOST,
    runtime,
    engine: new FakeEngine(),
    catalog: new SqliteCheckpointCatalog(db),
    store,
    rootfs,
    clock: { now: () => Date.now() },
  });
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  t.is(await code(service.create('web', { leaveRunning: false })), ErrorCode.ROOTFS_DIFF_UNSUPPORTED);
  t.false(
    runtime.calls.some((c) => c.startsWith('checkpoint')),
    'nothing was dumped',
  );
  t.true(runtime.containers.get('c'.repeat(64))?.running);
});

/** A checkpoint service whose containers hold `residentBytes` of memory, with the given disk guard. */
function withRoom(
  ctx: Ctx,
  store: FsImageStore,
  residentBytes: number,
  guard?: DiskGuard,
): CheckpointService {
  return new CheckpointService({
    host: TEST_HOST,
    runtime: ctx.runtime,
    engine: new FakeEngine(),
    catalog: new SqliteCheckpointCatalog(ctx.db),
    store,
    rootfs: new FakeRootfs(),
    clock: { now: () => Date.now() },
    inspector: { residentBytes: async () => residentBytes } as unknown as ProcessInspector,
    ...(guard ? { guard } : {}),
  });
}

test('a checkpoint that the data directory has no room for is refused with 507 before anything is frozen', async (t) => {
  const { runtime, dir } = t.context;
  runtime.add({ id: 'f'.repeat(64), name: 'fat' });
  const store = new FsImageStore(dir);
  const free = (await store.space()).freeBytes;
  const service = (bytes: number) => withRoom(t.context, store, bytes);
  const refused = service(free + 1).create('fat', { leaveRunning: false });
  const error = await refused.then(
    () => undefined,
    (e: unknown) => e as AppError,
  );
  t.is(error?.code, ErrorCode.INSUFFICIENT_SPACE);
  t.is(error?.statusCode, 507);
  t.false(
    runtime.calls.some((c) => c.startsWith('checkpoint')),
    'no dump was started',
  );
  const taken = await service(1024).create('fat', { leaveRunning: false });
  t.is(taken.container?.name, 'fat');
});

test('the disk guard (CRYO_MIN_FREE_BYTES, CRYO_MIN_FREE_PERCENT) refuses a checkpoint that would go below its floor', async (t) => {
  const { runtime, dir } = t.context;
  runtime.add({ id: 'f'.repeat(64), name: 'small' });
  const store = new FsImageStore(dir);
  // A file system of 10 GB with 1 GB free; the dump needs 1 KiB and the 64 MiB margin.
  const disk = { space: async () => ({ freeBytes: 1e9, totalBytes: 1e10 }) };
  const withFloor = (floor: DiskFloor) =>
    withRoom(t.context, store, 1024, new DiskGuard(disk as unknown as ImageStore, floor));
  for (const floor of [
    { minFreeBytes: 0.95e9, minFreePercent: 0 },
    { minFreeBytes: 0, minFreePercent: 10 },
  ]) {
    const error = await withFloor(floor)
      .create('small', { leaveRunning: true })
      .then(
        () => undefined,
        (e: unknown) => e as AppError,
      );
    t.is(error?.code, ErrorCode.INSUFFICIENT_SPACE, JSON.stringify(floor));
    t.is(error?.statusCode, 507);
    t.regex(error?.message ?? '', /must stay free \(CRYO_MIN_FREE_BYTES, CRYO_MIN_FREE_PERCENT\)/);
    t.like(error?.details, { freeBytes: 1e9, floorBytes: floor.minFreeBytes || 1e9 });
  }
  t.false(
    runtime.calls.some((c) => c.startsWith('checkpoint')),
    'nothing was dumped',
  );
  t.true(runtime.containers.get('f'.repeat(64))?.running, 'the container keeps running untouched');
  const taken = await withFloor({ minFreeBytes: 0.9e9, minFreePercent: 5 }).create('small', {
    leaveRunning: true,
  });
  t.is(taken.container?.name, 'small', 'a floor the dump stays above lets it through');
});

test('disk pre-copy: a seed restores nothing; the container prepared from it takes the restore of its changes, once, and nothing else does', async (t) => {
  const { runtime, service } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const seed = await service.createDiskSeed('web', 'm-seed', { id: 'mmmmmmmmmmmm' });
  t.like(seed.checkpoint, { processImage: false, diskPreCopy: { part: 'seed', seed: 'm-seed' } });
  t.false(
    runtime.calls.some((c) => c.startsWith('checkpoint')),
    'a seed freezes nothing',
  );
  t.is(
    await code(service.restore(seed.checkpoint.id, { name: 'x', ports: 'free' })),
    ErrorCode.PRE_COPY_PART,
  );
  const prepared = await service.prepare(seed.checkpoint.id, { name: 'web2', ports: 'free' });
  t.like(await runtime.inspect('web2'), { state: 'created', running: false });
  const changes = await service.create(
    'web',
    { leaveRunning: true, name: 'm' },
    { diskSince: { seed: 'm-seed', index: seed.index } },
  );
  t.like(changes, { diskPreCopy: { part: 'changes', seed: 'm-seed' } });
  const id = prepared.container.id;
  t.is(
    await code(service.restore(changes.id, { name: 'other', ports: 'free' })),
    ErrorCode.PRE_COPY_PART,
    'not into just any new container',
  );
  t.is(
    await code(service.restore(changes.id, { name: 'web2', ports: 'free', prepared: 'f'.repeat(64) })),
    ErrorCode.PRE_COPY_PART,
    'nor into a container that was not prepared here',
  );
  t.is(
    await code(service.restore(changes.id, { name: 'other', ports: 'free', prepared: id })),
    ErrorCode.VALIDATION_FAILED,
    'nor under another name',
  );
  t.is(await code(service.restore(changes.id, { ports: 'free', prepared: id })), ErrorCode.VALIDATION_FAILED);
  const ok = await service.restore(changes.id, { name: 'web2', ports: 'free', prepared: id });
  t.is(ok.container?.id, id);
  t.true(runtime.calls.includes(`restore ${id}`));
  t.like(await runtime.inspect('web2'), { running: true });
  t.is(
    await code(service.restore(changes.id, { name: 'web2', ports: 'free', prepared: id })),
    ErrorCode.PRE_COPY_PART,
    'a prepared container serves one restore',
  );
  await service.remove(seed.checkpoint.id);
  t.like(
    await runtime.inspect('web2'),
    { running: true },
    'deleting its seed leaves a restored container be',
  );
});

test('disk pre-copy: a prepared container goes with its seed, or with a failed restore; the checkpoints stay', async (t) => {
  const { runtime, service } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const first = await service.createDiskSeed('web', 'one-seed', { id: 'mmmmmmmmmmm1' });
  await service.prepare(first.checkpoint.id, { name: 'one', ports: 'free' });
  await service.remove(first.checkpoint.id);
  t.is(await runtime.inspect('one'), undefined, 'deleting the seed removes its prepared container');

  const second = await service.createDiskSeed('web', 'two-seed', { id: 'mmmmmmmmmmm2' });
  const { container } = await service.prepare(second.checkpoint.id, { name: 'two', ports: 'free' });
  const changes = await service.create(
    'web',
    { leaveRunning: true, name: 'two' },
    { diskSince: { seed: 'two-seed', index: second.index } },
  );
  runtime.failRestore = new CriuError('restore failed', ['Error: something']);
  t.is(
    await code(service.restore(changes.id, { name: 'two', ports: 'free', prepared: container.id })),
    ErrorCode.CRIU_FAILED,
  );
  t.is(await runtime.inspect('two'), undefined, 'the half-restored container is gone');
  t.truthy(service.get(changes.id));
  t.truthy(service.get(second.checkpoint.id));
});
