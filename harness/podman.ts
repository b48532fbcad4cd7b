import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { CROSS_ENGINE_CRIU_CONFIG, CROSS_ENGINE_CRIU_OPTIONS } from '../src/domain/cross-engine.js';
import { sleep, type CounterReading } from './containers.js';
import { eventually } from './eventually.js';

/**
 * The Podman under test: Debian 12's 4.3 (`podman`), or forky's 5.8 from a private prefix
 * (CRYO_TEST_PODMAN=/opt/cryo/podman-5.8/bin/podman, native-scripts/install-podman-engine.sh; a leg of the matrix).
 */
export const PODMAN = process.env.CRYO_TEST_PODMAN ?? 'podman';

/** Podman and the CRIU configuration that cross-engine checkpoints name: setup-host.sh installs both. */
export async function requirePodman(): Promise<void> {
  const version = await execa(PODMAN, ['version', '--format', '{{.Client.Version}}'], { reject: false });
  if (version.exitCode !== 0)
    throw new Error(`podman does not run (${version.stderr.trim()}); run: sudo native-scripts/setup-host.sh`);
  const conf = await readFile(CROSS_ENGINE_CRIU_CONFIG, 'utf8').catch(() => '');
  for (const option of CROSS_ENGINE_CRIU_OPTIONS) {
    if (!conf.split('\n').includes(option))
      throw new Error(`${CROSS_ENGINE_CRIU_CONFIG} lacks ${option}; run: sudo native-scripts/setup-host.sh`);
  }
}

/** Where the test files that use an image in Podman's storage say so: the last one to go removes what they loaded. */
const IMAGE_USERS_DIR = '/run/cryo-test-podman-images';

/** Runs `fn` while holding a lock shared by every test process (mkdir is atomic). */
async function withImageLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = path.join(IMAGE_USERS_DIR, 'lock');
  for (let i = 0; ; i++) {
    try {
      await mkdir(IMAGE_USERS_DIR, { recursive: true });
      await mkdir(lock);
      break;
    } catch (err) {
      // ENOENT: the last user removed the directory meanwhile.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'EEXIST' && code !== 'ENOENT') || i > 600) throw err;
      // A lock older than a minute is a killed test process's: nobody holds it that long.
      const since = await stat(lock).then(
        (st) => Date.now() - st.mtimeMs,
        () => 0,
      );
      if (since > 60_000) await rm(lock, { recursive: true, force: true });
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
    // Gone once nobody uses it (rmdir leaves a directory that is not empty).
    await rmdir(IMAGE_USERS_DIR).catch(() => undefined);
  }
}

/**
 * Puts a Docker image into Podman's storage (`docker save | podman load`: the same config digest, the same id), for
 * as long as the returned release is not called. Test files run at once share it: the image loaded by the tests is
 * removed when the last of them releases it, one that was there before stays.
 */
export async function useImageInPodman(image: string, tmp: string): Promise<() => Promise<void>> {
  const key = path.join(IMAGE_USERS_DIR, `${PODMAN.replace(/\W/g, '_')}-${image.replace(/\W/g, '_')}`);
  const me = path.join(key, `${process.pid}-${Math.random().toString(16).slice(2)}`);
  await withImageLock(async () => {
    await mkdir(key, { recursive: true });
    const present = await execa(PODMAN, ['image', 'exists', image], { reject: false });
    if (present.exitCode !== 0) {
      const archive = path.join(tmp, 'image.tar');
      await execa('docker', ['save', '-o', archive, image]);
      await execa(PODMAN, ['load', '-q', '-i', archive]);
      await rm(archive);
      await writeFile(path.join(key, 'loaded'), '');
    }
    await writeFile(me, '');
  });
  return () =>
    withImageLock(async () => {
      await rm(me, { force: true });
      // Users whose process is gone (a killed test run) do not count.
      const left = (await readdir(key)).filter((f) => f !== 'loaded' && alive(Number(f.split('-')[0])));
      if (left.length > 0) return;
      if (
        await access(path.join(key, 'loaded')).then(
          () => true,
          () => false,
        )
      )
        await execa(PODMAN, ['rmi', '-f', image], { reject: false });
      await rm(key, { recursive: true, force: true });
    });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `podman system service` on a socket of its own, as CRYO_ENGINE=podman talks to it. */
export class PodmanService {
  private constructor(
    readonly socket: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<PodmanService> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-podman-service-'));
    const socket = path.join(dir, 'podman.sock');
    const child = spawn(PODMAN, ['system', 'service', '--time=0', `unix://${socket}`], { stdio: 'ignore' });
    const service = new PodmanService(socket, dir, child);
    try {
      await eventually(
        () =>
          access(socket).then(
            () => true,
            () => undefined,
          ),
        {
          what: `podman system service on ${socket}`,
          timeoutMs: 20_000,
          intervalMs: 100,
        },
      );
    } catch (err) {
      await service.stop();
      throw err;
    }
    return service;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The counter workload's reading, from inside a Podman container (its port need not be published); `cli`
 * 'docker' reads one Docker runs.
 */
export async function podmanCounter(name: string, cli = PODMAN): Promise<CounterReading> {
  const { stdout } = await execa(cli, [
    'exec',
    name,
    '/usr/bin/node',
    '-e',
    "fetch('http://127.0.0.1:8080/').then((r) => r.text()).then((t) => process.stdout.write(t))",
  ]);
  return JSON.parse(stdout) as CounterReading;
}

/** Waits for a Podman container's counter to reach `min`. */
export function podmanCounterAtLeast(name: string, min: number, cli = PODMAN): Promise<CounterReading> {
  return eventually(
    () =>
      podmanCounter(name, cli).then(
        (r) => (r.count >= min ? r : undefined),
        () => undefined,
      ),
    {
      what: `the counter of the ${cli} container ${name} at ${min}`,
      timeoutMs: 20_000,
      intervalMs: 200,
    },
  );
}

/** The counter of a container Podman (or `cli`'s engine) restored goes on from `before`: the same process, counting on. */
export async function countsOnInPodman(
  t: ExecutionContext,
  name: string,
  before: CounterReading,
  cli = PODMAN,
): Promise<{ after: CounterReading; later: CounterReading }> {
  const after = await eventually(() => podmanCounter(name, cli).catch(() => undefined), {
    what: `the counter of the ${cli} container ${name}`,
    timeoutMs: 15_000,
    intervalMs: 200,
  });
  t.is(after.bootId, before.bootId, 'the same process, restored, not the workload started again');
  t.true(
    after.count >= before.count,
    `restored at ${after.count}, read ${before.count} before the checkpoint`,
  );
  await sleep(500);
  const later = await podmanCounter(name, cli);
  t.true(later.count > after.count, `it counts on under ${cli}`);
  return { after, later };
}
