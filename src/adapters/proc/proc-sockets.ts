import { readFile } from 'node:fs/promises';
import { runCommand, type CommandDeadline } from '../exec/run-command.js';

// A process's sockets, as /proc/<pid>/net and ss in its network namespace show them.

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};
const UNIX_TYPES: Record<string, string> = { '0001': 'stream', '0002': 'dgram', '0005': 'seqpacket' };

export interface InetSocket {
  proto: string;
  local: string;
  remote: string;
  state: string;
}

export interface UnixSocket {
  type: string;
  state: string;
  path?: string;
  peerInode?: number;
}

export async function inetSockets(pid: number): Promise<Map<number, InetSocket>> {
  const out = new Map<number, InetSocket>();
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const text = await readFile(`/proc/${pid}/net/${proto}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      out.set(Number(f[9]), {
        proto,
        local: address(f[1]!),
        remote: address(f[2]!),
        state: proto.startsWith('tcp')
          ? (TCP_STATES[f[3]!] ?? f[3]!)
          : f[3] === '01'
            ? 'ESTABLISHED'
            : 'UNCONN',
      });
    }
  }
  return out;
}

export async function unixSockets(pid: number): Promise<Map<number, UnixSocket>> {
  const out = new Map<number, UnixSocket>();
  const text = await readFile(`/proc/${pid}/net/unix`, 'utf8').catch(() => '');
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    out.set(Number(f[6]), {
      type: UNIX_TYPES[f[4]!] ?? f[4]!,
      state: f[5] === '03' ? 'connected' : f[5] === '01' ? 'unconnected' : f[5]!,
      ...(f[7] ? { path: f[7] } : {}),
    });
  }
  return out;
}

/** Unix socket peers by inode: /proc/net/unix has none, ss reads them over sock_diag in the netns. */
export async function unixPeers(pid: number, deadline: CommandDeadline): Promise<Map<number, number>> {
  const peers = new Map<number, number>();
  const ss = await runCommand('nsenter', [`--net=/proc/${pid}/ns/net`, 'ss', '-xanH'], deadline, {
    reject: false,
  });
  for (const line of ss.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const peer = Number(f[7]);
    if (peer > 0) peers.set(Number(f[5]), peer);
  }
  return peers;
}

/** "0100007F:1F90" -> "127.0.0.1:8080"; IPv6 words are little-endian too. */
function address(hex: string): string {
  const [ip, port] = hex.split(':');
  const p = Number.parseInt(port ?? '0', 16);
  if (!ip) return `?:${p}`;
  if (ip.length === 8) {
    const b = Buffer.from(ip, 'hex').reverse();
    return `${[...b].join('.')}:${p}`;
  }
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const w = Buffer.from(ip.slice(i, i + 8), 'hex')
      .reverse()
      .toString('hex');
    words.push(w.slice(0, 4), w.slice(4));
  }
  return `[${words.map((w) => w.replace(/^0+(?=.)/, '')).join(':')}]:${p}`;
}
