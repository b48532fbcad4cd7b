import test from 'ava';
import { preflightProblems } from '../../src/domain/preflight.js';
import { CriuOptionsSchema, type Fd, type ProcessReport } from '../../src/domain/process.js';

function report(fds: Fd[]): ProcessReport {
  return {
    root: 100,
    processes: [
      {
        pid: 100,
        ppid: 1,
        comm: 'app',
        cmdline: ['app'],
        state: 'S',
        threads: 1,
        uids: [1000, 1000, 1000, 1000],
        gids: [1000, 1000, 1000, 1000],
        namespaces: {},
        cgroup: '0::/',
        memory: { rss: 0, anonymous: 0, fileBacked: 0, shared: 0 },
        fds,
      },
    ],
  };
}

const defaults = CriuOptionsSchema.parse({});
const codes = (fds: Fd[], options = defaults) => preflightProblems(report(fds), options).map((p) => p.code);

test('a held file lock is a problem unless fileLocks is asked for', (t) => {
  const fd: Fd = { fd: 3, kind: 'file', target: '/data/app.lock', locks: 1 };
  t.deepEqual(codes([fd]), ['FILE_LOCK']);
  t.deepEqual(codes([fd], { ...defaults, fileLocks: true }), []);
  t.deepEqual(codes([{ ...fd, locks: undefined }]), []);
});

test('a file on a detached mount is a problem whatever the options', (t) => {
  const fd: Fd = { fd: 4, kind: 'file', target: '/held', mountId: 43, mountDetached: true };
  t.deepEqual(codes([fd]), ['FILE_ON_DETACHED_MOUNT']);
  t.deepEqual(
    codes([fd], { tcpEstablished: true, fileLocks: true, shellJob: true, externalUnixSockets: true }),
    ['FILE_ON_DETACHED_MOUNT'],
  );
  t.deepEqual(codes([{ ...fd, mountDetached: undefined }]), []);
  const [problem] = preflightProblems(report([fd]), defaults);
  t.is(problem?.pid, 100);
  t.is(problem?.fd, 4);
  t.true((problem?.hint.length ?? 0) > 0);
});

test("a terminal the tree does not own is a problem, but not the container's console that the runtime hands CRIU", (t) => {
  const console: Fd = { fd: 0, kind: 'tty', target: '/dev/pts/0', device: '136:0' };
  const other: Fd = { fd: 5, kind: 'tty', target: '/dev/pts/3', device: '136:3' };
  t.deepEqual(codes([console]), ['TTY_NOT_OWNED']);
  t.deepEqual(
    preflightProblems(report([console, other]), defaults, { consoles: new Set(['136:0']) }).map(
      (p) => `${p.code} ${p.fd}`,
    ),
    ['TTY_NOT_OWNED 5'],
  );
  t.deepEqual(codes([console, other], { ...defaults, shellJob: true }), []);
});

test("another user's process is a problem only when CRIU would run without CAP_SYS_RESOURCE", (t) => {
  const of = (dumper: { uid: number; gid: number; sysResource: boolean }) =>
    preflightProblems(report([]), defaults, { dumper }).map((p) => p.code);
  t.deepEqual(of({ uid: 0, gid: 0, sysResource: false }), ['CAP_SYS_RESOURCE_MISSING']);
  t.deepEqual(of({ uid: 0, gid: 0, sysResource: true }), []);
  t.deepEqual(of({ uid: 1000, gid: 1000, sysResource: false }), [], 'its own user needs no capability');
  t.deepEqual(of({ uid: 1000, gid: 0, sysResource: false }), ['CAP_SYS_RESOURCE_MISSING']);
});
