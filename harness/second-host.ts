import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { sleep, type CounterReading } from './containers.js';
import { TestCryo, type TestCryoOptions } from './cryo.js';
import { engineDaemon } from './engine.js';

export interface SecondHostOptions {
  brokenCriu?: boolean;
  containerdStore?: boolean;
}

/**
 * A second Docker host on this machine: a network namespace joined to the host by a veth pair, and a second
 * dockerd inside it with its own data root, exec root, pid file and API socket. `stop` tears all of it down.
 */
export class SecondHost {
  private daemon: ResultPromise | undefined;

  private constructor(
    readonly netns: string,
    readonly root: string,
    readonly hostAddress: string,
    readonly nsAddress: string,
    private readonly vethHost: string,
  ) {}

  get dataRoot(): string {
    return path.join(this.root, 'docker');
  }

  get execRoot(): string {
    return `/run/${this.netns}`;
  }

  get socket(): string {
    return path.join(this.root, 'docker.sock');
  }

  get containerdSocket(): string {
    return path.join(this.execRoot, 'containerd', 'containerd.sock');
  }

  /**
   * With `brokenCriu`, this host's runc finds a criu that always fails (to test rollbacks); with
   * `containerdStore`, its images live in containerd's image store (Docker >= 24).
   */
  static async start(options: SecondHostOptions = {}): Promise<SecondHost> {
    const tag = randomBytes(3).toString('hex');
    const subnet = 1 + (Number.parseInt(tag.slice(0, 2), 16) % 250);
    const root = await mkdtemp('/var/lib/cryo-test-host-');
    const host = new SecondHost(
      `cryo-b-${tag}`,
      root,
      `10.213.${subnet}.1`,
      `10.213.${subnet}.2`,
      `cryoa${tag}`,
    );
    try {
      await host.up(options);
      return host;
    } catch (err) {
      await host.stop();
      throw err;
    }
  }

  /** Runs the docker CLI against this host's daemon. */
  docker(args: string[]) {
    return execa('docker', ['-H', `unix://${this.socket}`, ...args]);
  }

  /** The counter workload's reading, from inside the container (this host's ports are in its own netns). */
  async readCounter(name: string, timeoutMs = 15_000): Promise<CounterReading> {
    const script = "fetch('http://127.0.0.1:8080/').then(r=>r.text()).then(t=>process.stdout.write(t))";
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await this.docker(['exec', name, '/usr/bin/node', '-e', script]).catch((err: Error) => err);
      if (!(res instanceof Error)) return JSON.parse(res.stdout) as CounterReading;
      if (Date.now() > deadline) throw res;
      await sleep(300);
    }
  }

  /** Caps what the first host sends this one (its end of the veth pair) at `mbit` Mbit/s: a slow link. */
  async limitRate(mbit: number): Promise<void> {
    await execa('tc', [
      'qdisc',
      'replace',
      'dev',
      this.vethHost,
      'root',
      'tbf',
      'rate',
      `${mbit}mbit`,
      'burst',
      '64kb',
      'latency',
      '2s',
    ]);
  }

  /** Takes the link between the two hosts down, or up again. */
  async link(up: boolean): Promise<void> {
    await execa('ip', ['link', 'set', this.vethHost, up ? 'up' : 'down']);
  }

  /** Copies an image from the first host's dockerd into this one. */
  /** Stops (SIGSTOP) or continues (SIGCONT) this host's dockerd, as `kill -STOP` on a hung daemon. */
  async pauseDaemon(paused: boolean): Promise<void> {
    const pid = Number((await readFile(path.join(this.root, 'docker.pid'), 'utf8')).trim());
    process.kill(pid, paused ? 'SIGSTOP' : 'SIGCONT');
  }

  async loadImage(image: string): Promise<void> {
    const file = path.join(this.root, 'image.tar');
    await execa('docker', ['save', '-o', file, image]);
    await execa('docker', ['-H', `unix://${this.socket}`, 'load', '-i', file]);
    await rm(file, { force: true });
  }

  private async up({ brokenCriu = false, containerdStore = false }: SecondHostOptions): Promise<void> {
    const vethNs = this.vethHost.replace('cryoa', 'cryob');
    await execa('ip', ['netns', 'add', this.netns]);
    await execa('ip', ['link', 'add', this.vethHost, 'type', 'veth', 'peer', 'name', vethNs]);
    await execa('ip', ['link', 'set', vethNs, 'netns', this.netns]);
    await execa('ip', ['addr', 'add', `${this.hostAddress}/30`, 'dev', this.vethHost]);
    await execa('ip', ['link', 'set', this.vethHost, 'up']);
    const inNs = (args: string[]) => execa('ip', ['netns', 'exec', this.netns, ...args]);
    await inNs(['ip', 'addr', 'add', `${this.nsAddress}/30`, 'dev', vethNs]);
    await inNs(['ip', 'link', 'set', vethNs, 'up']);
    await inNs(['ip', 'link', 'set', 'lo', 'up']);

    await mkdir(this.dataRoot, { recursive: true });
    const engine = engineDaemon();
    await writeFile(
      path.join(this.root, 'daemon.json'),
      JSON.stringify({
        experimental: true,
        runtimes: { cryo: { path: engine.runtime } },
        ...(containerdStore ? { features: { 'containerd-snapshotter': true } } : {}),
      }),
    );
    const bin = path.join(this.root, 'bin');
    if (brokenCriu) {
      await mkdir(bin);
      await writeFile(
        path.join(bin, 'criu'),
        '#!/bin/sh\necho "cryo test: this criu always fails" >&2\nexit 1\n',
        { mode: 0o755 },
      );
    }
    // dockerd wants its data root on a shared mount, or the second daemon's container mounts do not propagate.
    await execa('mount', ['--bind', this.dataRoot, this.dataRoot]);
    await execa('mount', ['--make-shared', this.dataRoot]);
    // `ip netns exec` remounts /sys and breaks dockerd's cgroups; nsenter only switches the network namespace.
    this.daemon = execa(
      'nsenter',
      [
        `--net=/run/netns/${this.netns}`,
        engine.dockerd,
        '--data-root',
        this.dataRoot,
        '--exec-root',
        this.execRoot,
        '--pidfile',
        path.join(this.root, 'docker.pid'),
        '-H',
        `unix://${this.socket}`,
        '--config-file',
        path.join(this.root, 'daemon.json'),
      ],
      {
        reject: false,
        env: {
          PATH: `${brokenCriu ? `${bin}:` : ''}${engine.path}`,
        },
        stdout: { file: path.join(this.root, 'dockerd.log') },
        stderr: { file: path.join(this.root, 'dockerd.err') },
      },
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      const v = await execa(
        'docker',
        ['-H', `unix://${this.socket}`, 'version', '--format', '{{.Server.Experimental}}'],
        {
          reject: false,
        },
      );
      if (v.exitCode === 0 && v.stdout.trim() === 'true') return;
      if (this.daemon.exitCode !== null && this.daemon.exitCode !== undefined) {
        throw new Error(`the second dockerd exited; see ${this.root}/dockerd.err`);
      }
      if (Date.now() > deadline)
        throw new Error(`the second dockerd did not answer; see ${this.root}/dockerd.err`);
      await sleep(300);
    }
  }

  async stop(): Promise<void> {
    if (this.daemon) {
      const ids = await execa('docker', ['-H', `unix://${this.socket}`, 'ps', '-aq'], { reject: false });
      const list = ids.stdout.split('\n').filter(Boolean);
      if (list.length > 0)
        await execa('docker', ['-H', `unix://${this.socket}`, 'rm', '-f', ...list], { reject: false });
      this.daemon.kill('SIGTERM');
      const timer = setTimeout(() => this.daemon?.kill('SIGKILL'), 20_000);
      await this.daemon;
      clearTimeout(timer);
    }
    await execa('umount', ['-R', this.dataRoot], { reject: false });
    await rm(this.root, { recursive: true, force: true });
    await rm(this.execRoot, { recursive: true, force: true });
    await execa('ip', ['link', 'del', this.vethHost], { reject: false });
    await execa('ip', ['netns', 'del', this.netns], { reject: false });
  }
}

/** A second host with its own cryo (talking to that host's dockerd), both torn down when the test ends. */
export async function bringUpSecondHost(
  t: { teardown(fn: () => Promise<void>): void },
  options: SecondHostOptions & { cryo?: TestCryoOptions } = {},
): Promise<{ host: SecondHost; cryo: TestCryo }> {
  const host = await SecondHost.start(options);
  t.teardown(() => host.stop());
  const cryo = await TestCryo.start({
    ...options.cryo,
    dockerSocket: host.socket,
    containerdSocket: host.containerdSocket,
    dockerExecRoot: host.execRoot,
  });
  t.teardown(() => cryo.stop());
  return { host, cryo };
}
