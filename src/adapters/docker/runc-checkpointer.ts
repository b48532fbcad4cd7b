import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, ExecaError } from 'execa';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import type { CriuStats } from '../../domain/criu-stats.js';
import { DUMP_LOG, STATS_DUMP } from '../../domain/layout.js';
import { criuFailure } from '../criu/log-tail.js';
import { readStatsImage } from '../criu/stats-image.js';

export interface RuncDump {
  /** The runc state directory that holds the container (`runc --root`). */
  root: string;
  containerId: string;
  /** Where CRIU writes its images. */
  imagesDir: string;
  /** Where CRIU writes dump.log and stats-dump. */
  workDir: string;
  leaveRunning: boolean;
  criu: ContainerCriuOptions;
}

/** The CRIU options as flags of `runc checkpoint`; the ghost limit, which runc has no flag for, is not here. */
export function runcCriuFlags(o: ContainerCriuOptions): string[] {
  return [
    ...(o.tcpEstablished ? ['--tcp-established'] : []),
    ...(o.fileLocks ? ['--file-locks'] : []),
    ...(o.externalUnixSockets ? ['--ext-unix-sk'] : []),
  ];
}

/** `runc checkpoint` of the container at `root`, into `imagesDir`, with CRIU's logs in `workDir`. */
export function checkpointArgs(dump: { root: string; imagesDir: string; workDir: string }): string[] {
  return ['--root', dump.root, 'checkpoint', '--image-path', dump.imagesDir, '--work-path', dump.workDir];
}

/** The same options as lines of a CRIU configuration file. */
export function criuConfigLines(o: ContainerCriuOptions): string[] {
  return [
    ...(o.tcpEstablished ? ['tcp-established'] : []),
    ...(o.fileLocks ? ['file-locks'] : []),
    ...(o.externalUnixSockets ? ['ext-unix-sk'] : []),
    ...(o.ghostLimitBytes !== undefined ? [`ghost-limit ${o.ghostLimitBytes}`] : []),
  ];
}

/**
 * Dumps a container straight through runc, the way containerd's shim would, but into cryo's own storage:
 * Docker's checkpoint API copies every image through containerd's content store twice.
 */
export class RuncCheckpointer {
  constructor(readonly binary = 'runc') {}

  /** The runc root under dockerd's exec root that holds this container, if runc runs it. */
  async rootFor(execRoot: string, containerId: string): Promise<string | undefined> {
    const root = path.join(execRoot, 'runtime-runc', 'moby');
    const state = await readFile(path.join(root, containerId, 'state.json'), 'utf8').catch(() => undefined);
    return state === undefined ? undefined : root;
  }

  /** Sends `signal` to the container's init, frozen or not (a frozen one acts on it once thawed). */
  async kill(root: string, containerId: string, signal: string): Promise<void> {
    await execa(this.binary, ['--root', root, 'kill', containerId, signal], { timeout: 30_000 });
  }

  async checkpoint(dump: RuncDump): Promise<CriuStats> {
    const args = [
      ...checkpointArgs(dump),
      ...(dump.leaveRunning ? ['--leave-running'] : []),
      ...runcCriuFlags(dump.criu),
      dump.containerId,
    ];
    // runc has no flag for the ghost limit; CRIU reads a per-process configuration file named in its environment,
    // so each request gets its own file and two concurrent dumps never see each other's options. It lives in the
    // dump's work directory (staging), which a start after a crash sweeps.
    const confDir =
      dump.criu.ghostLimitBytes === undefined
        ? undefined
        : await mkdtemp(path.join(dump.workDir, 'criu-conf-'));
    try {
      const env: Record<string, string> = {};
      if (confDir) {
        const conf = path.join(confDir, 'criu.conf');
        await writeFile(conf, `ghost-limit ${String(dump.criu.ghostLimitBytes)}\n`);
        env.CRIU_CONFIG_FILE = conf;
      }
      await execa(this.binary, args, { all: true, env, timeout: 10 * 60_000 });
    } catch (err) {
      if (!(err instanceof ExecaError)) throw err;
      throw await criuFailure('runc checkpoint', path.join(dump.workDir, DUMP_LOG), err);
    } finally {
      if (confDir) await rm(confDir, { recursive: true, force: true });
    }
    return readStatsImage(path.join(dump.workDir, STATS_DUMP));
  }
}
