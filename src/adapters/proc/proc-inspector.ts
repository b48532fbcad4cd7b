import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_COMMAND_DEADLINE, type CommandDeadline } from '../exec/run-command.js';
import type { Dumper } from '../../domain/preflight.js';
import type { Fd, ProcessInfo, ProcessReport } from '../../domain/process.js';
import type { ProcessInspector } from '../../services/ports/process-inspector.js';
import { inetSockets, unixPeers, unixSockets, type InetSocket, type UnixSocket } from './proc-sockets.js';

/** capability(7): lets a process read and set another user's resource limits, as CRIU does for every task. */
const CAP_SYS_RESOURCE = 24n;

/**
 * Reads a process tree's state from /proc (its sockets through proc-sockets.ts): the /proc parsers (fds, mounts,
 * status) only this reader uses.
 */
export class ProcInspector implements ProcessInspector {
  constructor(private readonly deadline: CommandDeadline = DEFAULT_COMMAND_DEADLINE) {}

  async dumper(): Promise<Dumper> {
    const status = await readFile('/proc/self/status', 'utf8');
    const effective = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
    return {
      uid: ids(status, 'Uid')[0] ?? 0,
      gid: ids(status, 'Gid')[0] ?? 0,
      sysResource: (effective & (1n << CAP_SYS_RESOURCE)) !== 0n,
    };
  }

  async exists(pid: number): Promise<boolean> {
    return stat(`/proc/${pid}`).then(
      () => true,
      () => false,
    );
  }

  async liveness(pid: number): Promise<'running' | 'zombie' | 'gone'> {
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (state === undefined) return 'gone';
    return state.slice(state.lastIndexOf(')') + 2).startsWith('Z') ? 'zombie' : 'running';
  }

  async residentBytes(pid: number): Promise<number> {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  }

  async report(root: number): Promise<ProcessReport> {
    const pids = await this.tree(root);
    const [inet, unix] = await Promise.all([inetSockets(root), unixSockets(root)]);
    const processes = (
      await Promise.all(pids.map((pid) => this.process(pid, inet, unix).catch(() => undefined)))
    ).filter((p): p is ProcessInfo => p !== undefined);
    const unixFds = processes.flatMap((p) => p.fds.filter((f) => f.kind === 'unix' && f.socket));
    if (unixFds.length > 0) {
      const peers = await unixPeers(root, this.deadline);
      for (const f of unixFds) {
        const peer = peers.get(f.inode ?? NaN);
        if (peer !== undefined && f.socket) f.socket.peerInode = peer;
      }
    }
    const treeSockets = new Set(
      processes.flatMap((p) => p.fds.filter((f) => f.kind === 'unix').map((f) => f.inode)),
    );
    for (const p of processes) {
      for (const f of p.fds) {
        if (f.kind === 'unix' && f.socket?.peerInode !== undefined)
          f.socket.peerOutsideTree = !treeSockets.has(f.socket.peerInode);
      }
    }
    return { root, processes };
  }

  /** The root and all its descendants, parents before children. */
  private async tree(root: number): Promise<number[]> {
    const out: number[] = [];
    const queue = [root];
    while (queue.length > 0) {
      const pid = queue.shift()!;
      const children = await this.children(pid);
      if (children === undefined) return this.treeByScan(root);
      out.push(pid);
      queue.push(...children);
    }
    return out;
  }

  /** A process's children from /proc/<pid>/task/<tid>/children; undefined where the kernel lacks that file. */
  private async children(pid: number): Promise<number[] | undefined> {
    const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
    const lists = await Promise.all(
      tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => undefined)),
    );
    if (tasks.length > 0 && lists.every((l) => l === undefined)) return undefined;
    return lists.flatMap((l) => (l ?? '').split(' ').filter(Boolean).map(Number)).sort((a, b) => a - b);
  }

  /** The same tree from every process's parent, for kernels without CONFIG_PROC_CHILDREN. */
  private async treeByScan(root: number): Promise<number[]> {
    const parent = new Map<number, number>();
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const st = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (st) parent.set(Number(entry), ppid);
    }
    const children = new Map<number, number[]>();
    for (const [pid, ppid] of parent) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    const out: number[] = [];
    const queue = [root];
    while (queue.length > 0) {
      const pid = queue.shift()!;
      out.push(pid);
      queue.push(...(children.get(pid) ?? []).sort((a, b) => a - b));
    }
    return out;
  }

  private async process(
    pid: number,
    inet: Map<number, InetSocket>,
    unix: Map<number, UnixSocket>,
  ): Promise<ProcessInfo> {
    const base = `/proc/${pid}`;
    const statText = await readFile(`${base}/stat`, 'utf8');
    const started = startTime(statText);
    const comm = statText.slice(statText.indexOf('(') + 1, statText.lastIndexOf(')'));
    const [state, ppid] = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
    const status = await readFile(`${base}/status`, 'utf8');
    const cmdline = (await readFile(`${base}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    const namespaces: Record<string, number> = {};
    for (const ns of await readdir(`${base}/ns`).catch(() => [] as string[])) {
      const link = await readlink(`${base}/ns/${ns}`).catch(() => '');
      const ino = /\[(\d+)\]/.exec(link)?.[1];
      if (ino) namespaces[ns] = Number(ino);
    }
    const rollup = await readFile(`${base}/smaps_rollup`, 'utf8').catch(() => '');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0) * 1024;
    const rss = kb('Rss');
    const anonymous = kb('Anonymous');
    const info: ProcessInfo = {
      pid,
      ppid: Number(ppid),
      comm,
      cmdline,
      state: state ?? '?',
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1),
      uids: ids(status, 'Uid'),
      gids: ids(status, 'Gid'),
      namespaces,
      cgroup: (await readFile(`${base}/cgroup`, 'utf8').catch(() => '')).trim(),
      memory: {
        rss,
        anonymous,
        fileBacked: Math.max(0, rss - anonymous - kb('Pss_Shmem')),
        shared: kb('Shared_Clean') + kb('Shared_Dirty'),
      },
      fds: await this.fds(pid, inet, unix),
    };
    // A process that exited (or whose pid was reused) while it was read gives a torn view, such as files on
    // mounts it no longer sees: it is left out, as CRIU would not dump it either.
    const after = await readFile(`${base}/stat`, 'utf8').catch(() => '');
    const stateAfter = after.slice(after.lastIndexOf(')') + 2).split(' ')[0];
    if (!after || startTime(after) !== started || stateAfter === 'Z' || stateAfter === 'X')
      throw new Error(`pid ${pid} exited while it was read`);
    return info;
  }

  private async fds(
    pid: number,
    inet: Map<number, InetSocket>,
    unix: Map<number, UnixSocket>,
  ): Promise<Fd[]> {
    const out: Fd[] = [];
    const entries = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    let mounts: Set<number> | undefined;
    for (const entry of entries.map(Number).sort((a, b) => a - b)) {
      const path = `/proc/${pid}/fd/${entry}`;
      const target = await readlink(path).catch(() => undefined);
      if (target === undefined) continue;
      const fd = await classify(entry, target, path, inet, unix);
      if (fd.kind === 'file' || fd.kind === 'directory') {
        const info = await readFile(`/proc/${pid}/fdinfo/${entry}`, 'utf8').catch(() => '');
        const locks = info.split('\n').filter((l) => l.startsWith('lock:')).length;
        if (locks > 0) fd.locks = locks;
        const mountId = mountIdOf(info);
        if (Number.isFinite(mountId)) {
          mounts ??= await mountIds(pid);
          fd.mountId = mountId;
          if (!mounts.has(mountId)) {
            mounts = await mountIds(pid);
            if (!mounts.has(mountId)) fd.mountDetached = await detachedFile(pid, entry, target, mounts);
          }
        }
      }
      out.push(fd);
    }
    return out;
  }
}

/** The process's start time (field 22 of /proc/<pid>/stat), which tells a reused pid apart. */
function startTime(stat: string): string | undefined {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/**
 * The mount ids a process sees. A process that exits while it is read shows no mounts at all, which made every
 * open file look detached: such a process is gone, and the report leaves it out (the caller drops it on throw).
 */
/** The ids of the mounts the process can see (the first field of each /proc/<pid>/mountinfo line). */
async function mountIds(pid: number): Promise<Set<number>> {
  const text = await readFile(`/proc/${pid}/mountinfo`, 'utf8');
  const ids = new Set(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split(' ')[0])),
  );
  if (ids.size === 0) throw new Error(`pid ${pid} exited while it was read`);
  return ids;
}

/** The mount an fd's file is on, from its fdinfo; NaN when the fd is gone. */
function mountIdOf(fdinfo: string): number {
  return Number(/^mnt_id:\s+(\d+)/m.exec(fdinfo)?.[1] ?? NaN);
}

/** The inode of an fd's file, from its fdinfo (Linux >= 5.14); undefined on older kernels. */
function inodeOf(fdinfo: string): string | undefined {
  return /^ino:\s+(\d+)/m.exec(fdinfo)?.[1];
}

const DETACHED_RECHECK_MS = 50;
const DETACHED_RECHECKS = 5;

/**
 * Whether the fd's file is on a mount that no table lists, from a reading that holds still: the fd's inode (stat
 * through /proc/<pid>/fd, before and after) agrees with its fdinfo. The fd may change between two reads: busybox sh
 * runs `head >> file` in itself, swapping fd 1 between its stdout pipe (on the kernel's pipefs mount, in no table)
 * and the file. A file on a lazily unmounted filesystem stays as it was: two still readings must say so.
 */
async function detachedFile(pid: number, fd: number, target: string, mounts: Set<number>): Promise<boolean> {
  const path = `/proc/${pid}/fd/${fd}`;
  const inode = async () => (await stat(path, { bigint: true }).catch(() => undefined))?.ino.toString();
  const link = () => readlink(path).catch(() => undefined);
  let detached = 0;
  for (let i = 0; i < DETACHED_RECHECKS && detached < 2; i++) {
    await sleep(DETACHED_RECHECK_MS);
    const [ino1, link1] = [await inode(), await link()];
    const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    const [link2, ino2] = [await link(), await inode()];
    // fdinfo has the inode from Linux 5.14 on; before, the two stats alone must agree.
    const fdInode = inodeOf(info);
    const still =
      ino1 !== undefined && ino1 === ino2 && (fdInode === undefined || fdInode === ino1) && link1 === link2;
    if (!still || link1 !== target) continue;
    if (mounts.has(mountIdOf(info))) return false;
    detached++;
  }
  return detached >= 2;
}

async function classify(
  fd: number,
  target: string,
  path: string,
  inet: Map<number, InetSocket>,
  unix: Map<number, UnixSocket>,
): Promise<Fd> {
  const inode = Number(/\[(\d+)\]$/.exec(target)?.[1] ?? NaN);
  if (target.startsWith('socket:')) {
    const u = unix.get(inode);
    if (u)
      return {
        fd,
        kind: 'unix',
        target,
        inode,
        socket: {
          type: u.type,
          state: u.state,
          ...(u.path ? { path: u.path } : {}),
          ...(u.peerInode ? { peerInode: u.peerInode } : {}),
        },
      };
    const i = inet.get(inode);
    if (i)
      return {
        fd,
        kind: 'inet',
        target,
        inode,
        socket: { proto: i.proto, local: i.local, remote: i.remote, state: i.state },
      };
    return { fd, kind: 'socket', target, inode };
  }
  if (target.startsWith('pipe:')) return { fd, kind: 'pipe', target, inode };
  if (target.startsWith('anon_inode:')) {
    const name = target.slice('anon_inode:'.length).replace(/^\[|\]$/g, '');
    const kinds: Record<string, Fd['kind']> = {
      eventfd: 'eventfd',
      eventpoll: 'epoll',
      signalfd: 'signalfd',
      timerfd: 'timerfd',
      inotify: 'inotify',
      io_uring: 'io_uring',
    };
    return { fd, kind: kinds[name] ?? 'anon', target };
  }
  const deleted = target.endsWith(' (deleted)');
  const st = await stat(path).catch(() => undefined);
  if (st?.isCharacterDevice() || st?.isBlockDevice()) {
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    const tty = major === 4 || major === 5 || (major >= 136 && major <= 143);
    return { fd, kind: tty ? 'tty' : 'device', target, device: `${major}:${minor}` };
  }
  if (st?.isDirectory()) return { fd, kind: 'directory', target };
  if (st?.isFile() || deleted) return { fd, kind: 'file', target, deleted };
  return { fd, kind: 'other', target };
}

/** The Uid: or Gid: line of /proc/<pid>/status: real, effective, saved, filesystem. */
function ids(status: string, key: 'Uid' | 'Gid'): number[] {
  return (new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}
