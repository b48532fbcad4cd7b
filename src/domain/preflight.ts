import type { CriuOptions, Problem, ProcessReport } from './process.js';

// Character devices CRIU restores by path: memory devices (1:*), ttys and ptys, and /dev/net/tun (10:200).
const DUMPABLE_DEVICE = /^(1:\d+|10:200)$/;

/** Who runs CRIU (cryo, whose ids and capabilities the tools it starts inherit). */
export interface Dumper {
  uid: number;
  gid: number;
  /** CAP_SYS_RESOURCE: CRIU reads every task's resource limits, another user's only with it. */
  sysResource: boolean;
}

export interface PreflightContext {
  /** Terminals (major:minor) the runtime hands CRIU as external: a container's console. */
  consoles?: ReadonlySet<string>;
  dumper?: Dumper;
}

/**
 * The reasons a CRIU dump of this tree would fail, read from what it holds. Each one here was seen to make a
 * real `criu dump` fail (see test/integration/processes.test.ts).
 */
export function preflightProblems(
  report: ProcessReport,
  options: CriuOptions,
  context: PreflightContext = {},
): Problem[] {
  const consoles = context.consoles ?? new Set<string>();
  const { dumper } = context;
  const problems: Problem[] = [];
  for (const p of report.processes) {
    // prlimit(2) on another process needs its real, effective and saved ids to be the caller's real ones.
    const foreign =
      p.uids.slice(0, 3).some((u) => u !== dumper?.uid) || p.gids.slice(0, 3).some((g) => g !== dumper?.gid);
    if (dumper && !dumper.sysResource && foreign) {
      problems.push({
        code: 'CAP_SYS_RESOURCE_MISSING',
        message: `pid ${p.pid} runs as uid ${p.uids[1]} and gid ${p.gids[1]}, and CRIU would run without CAP_SYS_RESOURCE: it cannot read that process's resource limits`,
        hint: 'run cryo with CAP_SYS_RESOURCE (root with the full capability set), or the workload as the user cryo runs as',
        pid: p.pid,
      });
    }
    for (const f of p.fds) {
      if (
        f.kind === 'inet' &&
        f.socket?.proto?.startsWith('tcp') &&
        f.socket.state === 'ESTABLISHED' &&
        !options.tcpEstablished
      ) {
        problems.push({
          code: 'TCP_ESTABLISHED',
          message: `fd ${f.fd} of pid ${p.pid} is an established TCP connection (${f.socket.local} -> ${f.socket.remote})`,
          hint: 'pass tcpEstablished: true to checkpoint it (CRIU --tcp-established), or close the connection first',
          pid: p.pid,
          fd: f.fd,
        });
      }
      if (f.kind === 'unix' && f.socket?.peerOutsideTree && !options.externalUnixSockets) {
        problems.push({
          code: 'UNIX_SOCKET_EXTERNAL_PEER',
          message: `fd ${f.fd} of pid ${p.pid} is a unix socket whose peer (inode ${f.socket.peerInode}) is outside the tree`,
          hint: 'checkpoint the peer with it, close the connection, or pass externalUnixSockets: true if the peer will be there again at restore',
          pid: p.pid,
          fd: f.fd,
        });
      }
      if (f.locks && !options.fileLocks) {
        problems.push({
          code: 'FILE_LOCK',
          message: `fd ${f.fd} of pid ${p.pid} holds ${f.locks} file lock(s) on ${f.target}`,
          hint: 'pass fileLocks: true to dump and restore the locks (CRIU --file-locks), or release them first',
          pid: p.pid,
          fd: f.fd,
        });
      }
      if (f.mountDetached) {
        problems.push({
          code: 'FILE_ON_DETACHED_MOUNT',
          message: `fd ${f.fd} of pid ${p.pid} is ${f.target} on mount ${f.mountId}, which has been unmounted (lazily) and is in no mount table CRIU can read`,
          hint: 'close the file, or mount the filesystem again and reopen it, before checkpointing',
          pid: p.pid,
          fd: f.fd,
        });
      }
      if (f.kind === 'io_uring') {
        problems.push({
          code: 'IO_URING',
          message: `fd ${f.fd} of pid ${p.pid} is an io_uring instance, which CRIU cannot dump`,
          hint: 'run the workload without io_uring (for Node.js: UV_USE_IO_URING=0)',
          pid: p.pid,
          fd: f.fd,
        });
      }
      if (f.kind === 'device' && f.device && !DUMPABLE_DEVICE.test(f.device)) {
        problems.push({
          code: 'DEVICE_FILE',
          message: `fd ${f.fd} of pid ${p.pid} is the device ${f.target} (${f.device}), which CRIU cannot dump`,
          hint: 'close the device (GPUs, /dev/kvm, /dev/fuse and the like) before checkpointing',
          pid: p.pid,
          fd: f.fd,
        });
      }
      if (
        f.kind === 'tty' &&
        !options.shellJob &&
        !(f.device && consoles.has(f.device)) &&
        !report.processes.some((q) => q.fds.some((g) => g.target === '/dev/ptmx'))
      ) {
        problems.push({
          code: 'TTY_NOT_OWNED',
          message: `fd ${f.fd} of pid ${p.pid} is the terminal ${f.target}, which the tree does not own`,
          hint: 'pass shellJob: true (CRIU --shell-job), or start the workload detached from the terminal',
          pid: p.pid,
          fd: f.fd,
        });
      }
    }
  }
  return problems;
}
