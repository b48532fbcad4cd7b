import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { UnixSidecarConnector } from '../../src/adapters/sidecar/unix-sidecar-connector.js';
import { AppError, ErrorCode } from '../../src/domain/errors/index.js';
import { encodeFrame, FrameDecoder } from '../../src/domain/sidecar/frame-codec.js';
import { systemCoordinatorClock } from '../../src/services/sidecar/checkpoint-coordinator.js';
import { SidecarService } from '../../src/services/sidecar/sidecar-service.js';

/** What a job with one source subtask registers, having seen checkpoint ids up to `seen`. */
const registerFrame = (seen: number) =>
  encodeFrame({
    v: 1,
    type: 'register',
    job: 'fake',
    maxParallelism: 128,
    operators: [{ id: 'src', kind: 'source', parallelism: 1 }],
    finished: false,
    lastCheckpointId: seen,
    committedCheckpointId: seen,
  });
const register = registerFrame(0);

/** A fake job on a unix socket: `onTrigger` decides what it answers. Reached as /proc/<own pid>/root/<path>. */
async function fakeJob(
  t: import('ava').ExecutionContext,
  greet: Buffer,
  onTrigger: (s: net.Socket, id: number) => void,
) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-fakejob-'));
  const socketPath = path.join(dir, 'job.sock');
  const server = net.createServer((s) => {
    const decoder = new FrameDecoder();
    s.on('error', () => undefined);
    s.write(greet);
    s.on('data', (c: Buffer) => {
      for (const { frame } of decoder.push(c)) if (frame.type === 'trigger') onTrigger(s, frame.checkpointId);
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  const service = new SidecarService({
    connector: new UnixSidecarConnector(socketPath),
    dataDir: path.join(dir, 'data'),
    clock: systemCoordinatorClock,
    coordinator: { timeoutMs: 500 },
    connectTimeoutMs: 1000,
  });
  t.teardown(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  return { service, dir };
}

test('cryo refuses a job that sends garbage before registering, with SIDECAR_UNAVAILABLE', async (t) => {
  const { service, dir } = await fakeJob(t, Buffer.from('garbage\n'), () => undefined);
  const err = await t.throwsAsync(
    service.cut(process.pid, {
      dir: path.join(dir, 'ck'),
      publishedDir: path.join(dir, 'ck'),
      mode: 'exactly_once',
      keepOpen: false,
    }),
  );
  t.is((err as AppError).code, ErrorCode.SIDECAR_UNAVAILABLE);
});

test('a job that breaks the protocol mid-checkpoint fails that checkpoint, and leaves no state files', async (t) => {
  const { service, dir } = await fakeJob(t, register, (s, id) => {
    s.write(
      encodeFrame(
        { v: 1, type: 'state', checkpointId: id, operator: 'src', subtask: 0, name: 'a', size: 3 },
        Buffer.from('abc'),
      ),
    );
    s.write('{"v":1,"type":"ack","checkpointId":');
    s.write(' "not a number"}\n');
  });
  const ck = path.join(dir, 'ck');
  const err = await t.throwsAsync(
    service.cut(process.pid, { dir: ck, publishedDir: ck, mode: 'exactly_once', keepOpen: false }),
  );
  t.is((err as AppError).code, ErrorCode.APPLICATION_CHECKPOINT_FAILED);
  t.regex((err as AppError).message, /CONNECTION_LOST/);
  const files = await readdir(path.join(ck, 'operators', 'chk-1')).catch(() => [] as string[]);
  t.deepEqual(files, []);
});

test('a job that never acks expires the checkpoint; a state file that does not match its ack is declined', async (t) => {
  const silent = await fakeJob(t, register, () => undefined);
  const ck = path.join(silent.dir, 'ck');
  const err = await t.throwsAsync(
    silent.service.cut(process.pid, { dir: ck, publishedDir: ck, mode: 'exactly_once', keepOpen: false }),
  );
  t.regex((err as AppError).message, /EXPIRED/);

  const liar = await fakeJob(t, register, (s, id) => {
    s.write(
      encodeFrame(
        { v: 1, type: 'state', checkpointId: id, operator: 'src', subtask: 0, name: 'a', size: 3 },
        Buffer.from('abc'),
      ),
    );
    s.write(
      encodeFrame({
        v: 1,
        type: 'ack',
        checkpointId: id,
        operator: 'src',
        subtask: 0,
        handles: [{ name: 'a', size: 3, sha256: '0'.repeat(64) }],
      }),
    );
  });
  const ck2 = path.join(liar.dir, 'ck');
  const declined = await t.throwsAsync(
    liar.service.cut(process.pid, { dir: ck2, publishedDir: ck2, mode: 'exactly_once', keepOpen: false }),
  );
  t.regex((declined as AppError).message, /DECLINED.*sha256/);
  t.deepEqual(await readdir(path.join(ck2, 'operators', 'chk-1')).catch(() => [] as string[]), []);
});

test('checkpoint ids start above the highest the job has seen, whatever cryo remembers', async (t) => {
  const seen: number[] = [];
  const restoredJob = registerFrame(41);
  const { service, dir } = await fakeJob(t, restoredJob, (s, id) => {
    seen.push(id);
    s.write(encodeFrame({ v: 1, type: 'ack', checkpointId: id, operator: 'src', subtask: 0, handles: [] }));
  });
  const ck = path.join(dir, 'ck');
  const cut = await service.cut(process.pid, {
    dir: ck,
    publishedDir: ck,
    mode: 'exactly_once',
    keepOpen: false,
  });
  t.is(cut.checkpointId, 42);
  t.deepEqual(seen, [42]);
});
