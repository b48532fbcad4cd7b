import { access } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_COMMAND_DEADLINE, runCommand, type CommandDeadline } from '../exec/run-command.js';

/** containerd's namespace for dockerd's containers, images and content. */
const MOBY_NAMESPACE = 'moby';

/** A snapshot's overlay layers: where its changes go, and what it shows beneath, topmost first. */
export interface OverlayLayers {
  upper: string;
  lowers: string[];
}

/** The containerd that dockerd uses, through its `ctr` client. */
export class ContainerdCtl {
  constructor(
    private readonly execRoot: string,
    private readonly givenSocket?: string,
    private readonly deadline: CommandDeadline = DEFAULT_COMMAND_DEADLINE,
  ) {}

  /** Drops a blob from containerd's content store; false when containerd cannot be reached or refuses. */
  async removeContent(digest: string): Promise<boolean> {
    const result = await this.ctr(['content', 'rm', digest]);
    return result?.exitCode === 0;
  }

  /**
   * The overlay layers of a container's snapshot in containerd's image store (Docker's containerd-snapshotter,
   * where `docker inspect` shows GraphDriver "overlayfs" without data). `ctr snapshots mounts` only prints the
   * mount, for a created, running or stopped container alike.
   */
  async snapshotLayers(key: string): Promise<OverlayLayers | undefined> {
    const result = await this.ctr(['snapshots', '--snapshotter', 'overlayfs', 'mounts', '/', key]);
    if (!result || result.exitCode !== 0) return undefined;
    const options = /\s-o\s+(\S+)/.exec(result.stdout)?.[1]?.split(',') ?? [];
    const option = (name: string) => options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
    const upper = option('upperdir');
    if (!upper) return undefined;
    return { upper, lowers: (option('lowerdir') ?? '').split(':').filter(Boolean) };
  }

  private async ctr(args: string[]) {
    const socket = await this.socket();
    if (!socket) return undefined;
    return runCommand('ctr', ['--address', socket, '--namespace', MOBY_NAMESPACE, ...args], this.deadline, {
      reject: false,
    });
  }

  private async socket(): Promise<string | undefined> {
    if (this.givenSocket) return this.givenSocket;
    // dockerd runs its own containerd under its exec root, unless a system containerd was there first.
    for (const candidate of [
      path.join(this.execRoot, 'containerd/containerd.sock'),
      '/run/containerd/containerd.sock',
    ]) {
      if (await exists(candidate)) return candidate;
    }
    return undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
