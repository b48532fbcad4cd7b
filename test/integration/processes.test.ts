import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import type { Preflight, ProcessReport } from '../../src/domain/process.js';
import { TestContainers, freePort, inspect, sleep } from '../../harness/containers.js';
import { eventually } from '../../harness/eventually.js';
import { cryoSuite, type CryoSuiteContext } from '../../harness/cryo-suite.js';
import { TestCryo } from '../../harness/cryo.js';
import { BUSYBOX_IMAGE } from '../../harness/prerequisites.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const ECHO = path.join(repoRoot, 'fixtures/workloads/echo.js');

interface Extra {
  dir: string;
  pids: Set<number>;
}
type Ctx = CryoSuiteContext & Extra;
const test = cryoSuite<Extra>({
  extra: {
    make: async () => ({ dir: await mkdtemp(path.join(os.tmpdir(), 'cryo-proc-')), pids: new Set() }),
    cleanUp: killAndRemove,
  },
});

/** The process trees the tests started, and their directory. */
async function killAndRemove({ pids, dir }: Partial<Extra>): Promise<void> {
  for (const pid of pids ?? []) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** Starts a detached process tree (own session, no terminal); it is killed when the tests end. */
function spawnDetached(
  t: { context: Ctx },
  command: string,
  args: string[],
  env: Record<string, string> = {},
): number {
  const child = execa(command, args, {
    env,
    detached: true,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'ignore',
    reject: false,
  });
  child.catch(() => undefined);
  t.context.pids.add(child.pid!);
  return child.pid!;
}

async function connectEcho(
  port: number,
): Promise<{ ask: (line: string) => Promise<string>; socket: net.Socket }> {
  for (let i = 0; ; i++) {
    try {
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => resolve(s)).once('error', reject);
      });
      let buffered = '';
      const waiting: ((line: string) => void)[] = [];
      socket.on('data', (chunk) => {
        buffered += chunk.toString();
        let n;
        while ((n = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, n);
          buffered = buffered.slice(n + 1);
          waiting.shift()?.(line);
        }
      });
      const ask = (line: string) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no answer to ${line}`)), 10_000);
          waiting.push((l) => {
            clearTimeout(timer);
            resolve(l);
          });
          socket.write(`${line}\n`);
        });
      return { ask, socket };
    } catch (err) {
      if (i > 50) throw err;
      await sleep(100);
    }
  }
}

async function waitForFd(pid: number, kind: string): Promise<void> {
  await eventually(
    async () => (await execa('ls', ['-l', `/proc/${pid}/fd`], { reject: false })).stdout.includes(kind),
    { what: `pid ${pid} opening a ${kind}`, timeoutMs: 10_000, intervalMs: 100 },
  );
}

test.serial(
  'an established TCP connection: the pre-flight reports it, and a dump with tcpEstablished keeps it across the restore',
  async (t) => {
    const { cryo } = t.context;
    const port = await freePort();
    const pid = spawnDetached(t, 'node', [ECHO], { ECHO_PORT: String(port) });
    const client = await connectEcho(port);
    t.is(await client.ask('one'), '1 one');

    const report = await cryo.api<ProcessReport>('GET', `/v1/processes/${pid}`);
    t.is(report.status, 200);
    const root = report.body.processes[0]!;
    t.is(root.pid, pid);
    t.is(root.comm, 'node');
    t.true(root.memory.rss > 0 && root.threads >= 1);
    t.truthy(root.namespaces.net);
    const conn = root.fds.find((f) => f.kind === 'inet' && f.socket?.state === 'ESTABLISHED');
    t.truthy(conn, JSON.stringify(root.fds));
    t.is(conn?.socket?.local, `127.0.0.1:${port}`);
    t.true(root.fds.some((f) => f.kind === 'inet' && f.socket?.state === 'LISTEN'));
    t.true(root.fds.some((f) => f.kind === 'epoll'));

    const pre = await cryo.api<Preflight>('GET', `/v1/processes/${pid}/preflight`);
    t.false(pre.body.checkpointable);
    t.deepEqual(
      pre.body.problems.map((p) => p.code),
      ['TCP_ESTABLISHED'],
    );
    const preOk = await cryo.api<Preflight>('GET', `/v1/processes/${pid}/preflight?tcpEstablished=true`);
    t.true(preOk.body.checkpointable);

    const refused = await cryo.api<ErrorBody & { details: { problems: { code: string }[] } }>(
      'POST',
      `/v1/processes/${pid}/checkpoints`,
      {},
    );
    t.is(refused.status, 409);
    t.is(refused.body.code, ErrorCode.PREFLIGHT_FAILED);
    t.deepEqual(
      refused.body.details.problems.map((p) => p.code),
      ['TCP_ESTABLISHED'],
    );
    t.is(await client.ask('still'), '2 still', 'refused before anything was frozen');

    const created = await cryo.api<Checkpoint>('POST', `/v1/processes/${pid}/checkpoints`, {
      name: 'echo',
      tcpEstablished: true,
    });
    t.is(created.status, 201, JSON.stringify(created.body));
    t.is(created.body.kind, 'process');
    t.is(created.body.process?.pid, pid);
    t.true(
      (created.body.stats.frozenMs ?? 0) > 0 && (created.body.stats.pagesWritten ?? 0) > 0,
      JSON.stringify(created.body.stats),
    );
    const listed = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints;
    t.true(
      listed.some((c) => c.id === created.body.id),
      'listed with the others',
    );

    const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`);
    t.is(restored.status, 201, JSON.stringify(restored.body));
    t.is(restored.body.pid, pid, 'CRIU restores the tree under its own pids');
    t.is(
      await client.ask('again'),
      '3 again',
      'the same client connection gets an answer, and the count goes on',
    );
    client.socket.destroy();
  },
);

test.serial(
  'a held file lock: the pre-flight reports it, a forced dump fails for that reason, and with fileLocks the lock is still held after the restore',
  async (t) => {
    const { cryo, dir } = t.context;
    const lockFile = path.join(dir, 'held.lock');
    await writeFile(lockFile, '');
    const pid = spawnDetached(t, 'flock', [lockFile, 'sleep', '100000']);
    await waitForFd(pid, 'held.lock');
    const lockHeld = async () =>
      (await execa('flock', ['-n', lockFile, 'true'], { reject: false })).exitCode !== 0;
    t.true(await lockHeld());

    const report = (await cryo.api<ProcessReport>('GET', `/v1/processes/${pid}`)).body;
    t.true(
      report.processes.some((p) => p.fds.some((f) => (f.locks ?? 0) > 0)),
      JSON.stringify(report),
    );
    const pre = await cryo.api<Preflight>('GET', `/v1/processes/${pid}/preflight`);
    const codes = pre.body.problems.map((p) => p.code);
    t.true(codes.length > 0 && codes.every((c) => c === 'FILE_LOCK'), JSON.stringify(codes));
    t.true(
      (await cryo.api<Preflight>('GET', `/v1/processes/${pid}/preflight?fileLocks=true`)).body.checkpointable,
    );
    const forced = await cryo.api<ErrorBody & { details: { logTail: string[] } }>(
      'POST',
      `/v1/processes/${pid}/checkpoints`,
      { leaveRunning: true, force: true },
    );
    t.is(forced.status, 500, JSON.stringify(forced.body));
    t.regex(forced.body.details.logTail.join('\n'), /file locks/i);

    const created = await cryo.api<Checkpoint>('POST', `/v1/processes/${pid}/checkpoints`, {
      fileLocks: true,
    });
    t.is(created.status, 201, JSON.stringify(created.body));
    await execa('sh', ['-c', `while kill -0 ${pid} 2>/dev/null; do sleep 0.05; done`]);
    t.false(await lockHeld(), 'the dump stopped the tree and released the lock');
    const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`);
    t.is(restored.status, 201, JSON.stringify(restored.body));
    t.is(restored.body.pid, pid);
    t.true(await lockHeld(), 'the restored tree holds the lock again');
  },
);

test.serial('a deleted file and a pipe with data in it survive a dump and restore', async (t) => {
  const { cryo, dir } = t.context;
  const deleted = path.join(dir, 'deleted.txt');
  const out = path.join(dir, 'pipe.out');
  const out2 = path.join(dir, 'deleted.out');
  await writeFile(deleted, 'contents of a deleted file');
  const script = `exec 3<${deleted}; rm ${deleted}; printf data-in-the-pipe | (sleep 4; cat > ${out}); cat <&3 > ${out2}; sleep 1000`;
  const pid = spawnDetached(t, 'sh', ['-c', script]);
  await sleep(700);
  const report = (await cryo.api<ProcessReport>('GET', `/v1/processes/${pid}`)).body;
  t.true(report.processes.length >= 2, 'the tree has the shell and its children');
  t.true(
    report.processes.some((p) => p.fds.some((f) => f.kind === 'file' && f.deleted)),
    'the deleted file is seen',
  );
  t.true(report.processes.some((p) => p.fds.some((f) => f.kind === 'pipe')));
  t.true((await cryo.api<Preflight>('GET', `/v1/processes/${pid}/preflight`)).body.checkpointable);

  const created = await cryo.api<Checkpoint>('POST', `/v1/processes/${pid}/checkpoints`, {});
  t.is(created.status, 201, JSON.stringify(created.body));
  await sleep(500);
  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${created.body.id}/restore`);
  t.is(restored.status, 201, JSON.stringify(restored.body));
  await eventually(async () => (await readFile(out2, 'utf8').catch(() => '')).length > 0, {
    what: 'the restored tree writing the deleted file out',
    timeoutMs: 10_000,
    intervalMs: 100,
  }).catch(() => undefined);
  t.is(await readFile(out, 'utf8'), 'data-in-the-pipe', 'the data in the pipe came back');
  t.is(await readFile(out2, 'utf8'), 'contents of a deleted file', 'the deleted file came back');
});

test.serial(
  'io_uring, a unix socket to an outside peer, a device and a foreign terminal: refused by the pre-flight, and a forced dump really fails',
  async (t) => {
    const { cryo, dir } = t.context;
    const peerPath = path.join(dir, 'peer.sock');
    const peer = net.createServer((s) => s.on('error', () => undefined)).listen(peerPath);
    t.teardown(() => peer.close());
    const cases: {
      code: string;
      start: () => Promise<number>;
      body?: Record<string, unknown>;
      /** What CRIU's log must say, where the reason is specific. */
      reason?: RegExp;
    }[] = [
      {
        code: 'IO_URING',
        start: async () => {
          const pid = spawnDetached(t, 'node', [ECHO], {
            ECHO_PORT: String(await freePort()),
            UV_USE_IO_URING: '1',
            ECHO_READ_FILE: '/etc/hostname',
          });
          await waitForFd(pid, 'io_uring');
          return pid;
        },
      },
      {
        code: 'UNIX_SOCKET_EXTERNAL_PEER',
        start: async () => {
          const pid = spawnDetached(t, 'node', [ECHO], {
            ECHO_PORT: String(await freePort()),
            ECHO_UNIX_PEER: peerPath,
          });
          await waitForFd(pid, 'socket');
          await sleep(500);
          return pid;
        },
      },
      {
        code: 'DEVICE_FILE',
        start: async () => {
          // A misc device CRIU has no dumper for: /dev/kvm on these machines, /dev/fuse where there is none.
          const device = await access('/dev/kvm').then(
            () => '/dev/kvm',
            () => '/dev/fuse',
          );
          const pid = spawnDetached(t, 'node', [ECHO], {
            ECHO_PORT: String(await freePort()),
            ECHO_OPEN: device,
          });
          await waitForFd(pid, device);
          return pid;
        },
      },
      {
        code: 'FILE_ON_DETACHED_MOUNT',
        reason: /Can't lookup mount/,
        start: async () => {
          // A file held open on a tmpfs that was then unmounted lazily: the mount is in no table CRIU can read.
          const mnt = path.join(dir, 'lazy');
          await mkdir(mnt, { recursive: true });
          await execa('mount', ['-t', 'tmpfs', 'cryo-test', mnt]);
          await writeFile(path.join(mnt, 'held'), 'on a mount that is gone');
          const pid = spawnDetached(t, 'node', [ECHO], {
            ECHO_PORT: String(await freePort()),
            ECHO_OPEN: path.join(mnt, 'held'),
          });
          await waitForFd(pid, 'held');
          await execa('umount', ['-l', mnt]);
          return pid;
        },
      },
      {
        code: 'TTY_NOT_OWNED',
        start: async () => {
          const script = spawnDetached(t, 'script', ['-q', '-c', 'sleep 1000', '/dev/null']);
          const child = await eventually(
            async () =>
              (await execa('pgrep', ['-P', String(script)], { reject: false })).stdout
                .split('\n')
                .filter(Boolean)[0],
            { what: 'the child script starts', timeoutMs: 10_000, intervalMs: 100 },
          );
          return Number(child);
        },
      },
    ];
    for (const c of cases) {
      const pid = await c.start();
      const pre = await cryo.api<Preflight>('GET', `/v1/processes/${pid}/preflight`);
      t.is(pre.status, 200);
      t.false(pre.body.checkpointable, c.code);
      t.true(
        pre.body.problems.some((p) => p.code === c.code && p.pid !== undefined && p.hint.length > 0),
        `${c.code}: ${JSON.stringify(pre.body.problems)}`,
      );
      const refused = await cryo.api<ErrorBody>('POST', `/v1/processes/${pid}/checkpoints`, {
        leaveRunning: true,
      });
      t.is(refused.status, 409, c.code);
      t.is(refused.body.code, ErrorCode.PREFLIGHT_FAILED);
      const forced = await cryo.api<ErrorBody & { details: { logTail: string[] } }>(
        'POST',
        `/v1/processes/${pid}/checkpoints`,
        { leaveRunning: true, force: true },
      );
      t.is(forced.status, 500, `${c.code}: a forced dump must really fail: ${JSON.stringify(forced.body)}`);
      t.is(forced.body.code, ErrorCode.CRIU_FAILED, c.code);
      t.true(
        forced.body.details.logTail.some((l) => /Error/.test(l)),
        `${c.code}: ${forced.body.details.logTail.join('\n')}`,
      );
      if (c.reason) t.regex(forced.body.details.logTail.join('\n'), c.reason, c.code);
      t.true(
        (await execa('kill', ['-0', String(pid)], { reject: false })).exitCode === 0,
        `${c.code}: the process still runs`,
      );
    }
  },
);

test.serial(
  "a CRIU older than 4.2 (Debian 12's own, at /usr/sbin/criu): the pre-flight says CRIU_TOO_OLD, and a forced dump with it really fails",
  async (t) => {
    const oldCriu = '/usr/sbin/criu';
    const { stdout } = await execa(oldCriu, ['--version']);
    const version = /Version:\s*(\S+)/.exec(stdout)?.[1] ?? '';
    t.regex(version, /^3\./, `setup-host.sh installs Debian 12's criu 3.x at ${oldCriu}; found ${version}`);
    const old = await TestCryo.start({ criuBinary: oldCriu });
    t.teardown(() => old.stop());
    const pid = spawnDetached(t, 'sleep', ['100000']);
    await sleep(200);

    const pre = await old.api<Preflight>('GET', `/v1/processes/${pid}/preflight`);
    t.is(pre.status, 200);
    t.deepEqual(
      pre.body.problems.map((p) => p.code),
      ['CRIU_TOO_OLD'],
    );
    const refused = await old.api<ErrorBody>('POST', `/v1/processes/${pid}/checkpoints`, {
      leaveRunning: true,
    });
    t.is(refused.status, 409);
    t.is(refused.body.code, ErrorCode.PREFLIGHT_FAILED);
    const forced = await old.api<ErrorBody & { details: { logTail: string[] } }>(
      'POST',
      `/v1/processes/${pid}/checkpoints`,
      { leaveRunning: true, force: true },
    );
    t.is(forced.status, 500, JSON.stringify(forced.body));
    t.is(forced.body.code, ErrorCode.CRIU_FAILED);
    t.regex(forced.body.details.logTail.join('\n'), /Error/);
    t.is((await execa('kill', ['-0', String(pid)], { reject: false })).exitCode, 0, 'the process still runs');

    const fine = await t.context.cryo.api<Preflight>('GET', `/v1/processes/${pid}/preflight`);
    t.true(fine.body.checkpointable, 'the same process passes with the CRIU cryo installs');
  },
);

test.serial(
  'the cryo command inspects, checks, dumps and restores a process tree by pid; it counts on',
  async (t) => {
    const { cryo, dir } = t.context;
    const counter = path.join(dir, 'cli-counter');
    const pid = spawnDetached(t, 'sh', [
      '-c',
      `i=0; while :; do i=$((i+1)); echo $i > ${counter}.tmp; mv ${counter}.tmp ${counter}; sleep 0.05; done`,
    ]);
    const read = async () => Number((await readFile(counter, 'utf8').catch(() => '0')).trim());
    await eventually(async () => (await read()) >= 5, { what: 'the shell counter at 5' });

    const report = await cryo.cliJson<ProcessReport>(['inspect', String(pid)]);
    t.is(report.root, pid);
    t.true((await cryo.cliJson<Preflight>(['preflight', '--pid', String(pid)])).checkpointable);

    const created = await cryo.cliJson<Checkpoint>(['checkpoint', '--pid', String(pid)]);
    t.is(created.kind, 'process');
    const atDump = await read();
    await sleep(300);
    t.is(await read(), atDump, 'the tree stopped at the dump');
    const restored = await cryo.cliJson<RestoreResult>(['restore', created.id]);
    t.is(restored.pid, pid);
    const after = await eventually(async () => ((await read()) > atDump ? read() : undefined), {
      what: `the restored counter past ${atDump}`,
      timeoutMs: 5_000,
    });
    t.true(after > atDump && after < atDump + 50, `the counter goes on from ${atDump}: ${after}`);

    const notPid = await cryo.cli(['checkpoint', '--pid', 'web']);
    t.is(notPid.exitCode, 1);
    t.regex(notPid.stderr, /^cryo: VALIDATION_FAILED: "web" is not a pid\nhint: /);
    const misplaced = await cryo.cli(['checkpoint', '--pid', String(pid), '--include-volumes']);
    t.is(misplaced.exitCode, 1, 'a container-only flag with --pid is refused by the API');
    t.regex(misplaced.stderr, /^cryo: VALIDATION_FAILED: /);
    // A process tree restores only where it was dumped: no archive, and a clear refusal rather than a failure.
    const archive = await cryo.api('GET', `/v1/checkpoints/${created.id}/archive`);
    t.is(archive.status, 409);
    t.like(archive.body, { code: ErrorCode.CHECKPOINT_NOT_EXPORTABLE });
    const before = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints;
    const exported = await cryo.cli([
      'checkpoint',
      '--pid',
      String(pid),
      '--export',
      path.join(dir, 'p.tar'),
    ]);
    t.is(exported.exitCode, 1);
    t.regex(exported.stderr, /^cryo: VALIDATION_FAILED: --export applies to a container checkpoint/);
    t.deepEqual(
      (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
      before,
      'refused before any dump',
    );
    await cryo.cli(['rm', created.id]);
  },
);

test.serial(
  "another user's container: without CAP_SYS_RESOURCE the pre-flight says CAP_SYS_RESOURCE_MISSING and a forced dump really fails; with it, the dump and restore work",
  async (t) => {
    const { cryo } = t.context;
    const containers = new TestContainers();
    t.teardown(() => containers.removeAll());
    const name = containers.uniqueName('user1000');
    await containers.run({
      image: BUSYBOX_IMAGE,
      name,
      user: '1000:1000',
      cmd: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done'],
    });
    await sleep(500);
    const status = await readFile('/proc/self/status', 'utf8');
    const capable = (BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(status)![1]}`) & (1n << 24n)) !== 0n;
    const pre = (await cryo.api<Preflight>('GET', `/v1/containers/${name}/preflight`)).body;
    const created = await cryo.api<Checkpoint | ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {
      force: true,
    });
    if (capable) {
      t.true(pre.checkpointable, JSON.stringify(pre.problems));
      t.is(created.status, 201, JSON.stringify(created.body));
      const restored = await cryo.api('POST', `/v1/checkpoints/${(created.body as Checkpoint).id}/restore`);
      t.is(restored.status, 201, JSON.stringify(restored.body));
    } else {
      t.false(pre.checkpointable);
      t.true(pre.problems.some((p) => p.code === 'CAP_SYS_RESOURCE_MISSING'));
      t.is(created.status, 500);
      const failed = created.body as ErrorBody;
      t.is(failed.code, ErrorCode.CRIU_FAILED);
      t.regex(JSON.stringify(failed.details), /Can't get rlimit/);
      const refused = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {});
      t.is(refused.status, 409);
      t.is(refused.body.code, ErrorCode.PREFLIGHT_FAILED);
      t.true(
        (await inspect(name)).State.Running,
        'nothing was frozen for the refusal, and the failed dump left it running',
      );
    }
  },
);

test.serial('bad pids get clear 4xx errors', async (t) => {
  const { cryo } = t.context;
  for (const pid of ['0', '-5', '1', 'abc', '1.5']) {
    const res = await cryo.api<ErrorBody>('GET', `/v1/processes/${pid}`);
    t.is(res.status, 400, pid);
    t.is(res.body.code, ErrorCode.VALIDATION_FAILED, pid);
    const post = await cryo.api<ErrorBody>('POST', `/v1/processes/${pid}/checkpoints`, {});
    t.is(post.status, 400, pid);
  }
  const missing = await cryo.api<ErrorBody>('GET', '/v1/processes/4000000');
  t.is(missing.status, 404);
  t.is(missing.body.code, ErrorCode.PROCESS_NOT_FOUND);
  const self = await cryo.api<ErrorBody>('POST', `/v1/processes/${process.pid}/checkpoints`, {});
  t.is(self.status, 400);
  t.is(self.body.code, ErrorCode.PROCESS_REFUSED);
  const unknownOption = await cryo.api<ErrorBody>('POST', `/v1/processes/${process.pid}/checkpoints`, {
    evasiveDevices: true,
  });
  t.is(unknownOption.status, 400);
  t.is(unknownOption.body.code, ErrorCode.VALIDATION_FAILED);
});
