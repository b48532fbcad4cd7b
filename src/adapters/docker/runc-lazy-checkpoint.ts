import { createReadStream } from 'node:fs';
import { DEADLINES } from '../../defaults.js';
import { withDeadline } from '../exec/with-deadline.js';
import { open, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { DEFAULT_COMMAND_DEADLINE, runCommand } from '../exec/run-command.js';
import { execa, ExecaError } from 'execa';
import { CriuError } from '../../domain/errors/index.js';
import { DUMP_LOG } from '../../domain/layout.js';
import type { PageServerAddress } from '../../services/ports/container-runtime.js';
import { hangUp } from '../criu/hang-up.js';
import { criuFailure } from '../criu/log-tail.js';
import { checkpointArgs } from './runc-checkpointer.js';

/** What a lazy dump needs of runc: its binary, the container's runc root, and where CRIU writes. */
export interface LazyDump {
  binary: string;
  root: string;
  containerId: string;
  imagesDir: string;
  workDir: string;
  /** runc checkpoint's flags for the dump's CRIU options. */
  criuFlags: string[];
}

/** How long an aborted page server may take to end by itself before it is killed. */
const ABORT_GRACE_MS = 5_000;

/** The FIFO through which runc says that CRIU's page server listens, in the dump's work directory. */
const STATUS_FIFO = 'lazy-pages.status';

export interface LazyCheckpoint {
  /** Resolves once every image but the lazy pages is written and CRIU's page server listens. */
  ready: Promise<void>;
  /**
   * Resolves when CRIU has stopped serving pages and runc has ended (the tasks stay, frozen, with
   * --leave-running); rejects with CRIU's log tail when the transfer failed. CRIU also ends well when its peer
   * closes the connection early, so only the peer can say whether every page arrived.
   */
  served: Promise<void>;
  /**
   * Ends a page server that nobody will connect to: a connection that closes at once ends CRIU's serving, and with
   * --leave-running CRIU then leaves the tasks (frozen, where a freeze of the caller's holds them).
   */
  abort: () => Promise<void>;
}

/**
 * `runc checkpoint --lazy-pages --page-server`: CRIU dumps everything but the memory pages, then serves those
 * from the frozen tasks to the one peer that connects (its lazy-pages daemon), on fault and in the background.
 */
export async function runcLazyCheckpoint(
  dump: LazyDump,
  pageServer: PageServerAddress,
): Promise<LazyCheckpoint> {
  const fifo = path.join(dump.workDir, STATUS_FIFO);
  await rm(fifo, { force: true });
  await runCommand('mkfifo', ['-m', '600', fifo], DEFAULT_COMMAND_DEADLINE);
  const status = createReadStream(fifo);
  // runc checks that --status-fd is write-only (Node's own extra stdio pipes are read-write socket pairs).
  const writer = await open(fifo, 'w');
  const child = execa(
    dump.binary,
    [
      ...checkpointArgs(dump),
      '--leave-running',
      '--lazy-pages',
      '--page-server',
      `${pageServer.address.includes(':') ? `[${pageServer.address}]` : pageServer.address}:${pageServer.port}`,
      '--status-fd',
      '3',
      ...dump.criuFlags,
      dump.containerId,
    ],
    // execa passes a descriptor number through as the child's fd 3, as child_process does; its types omit it.
    // A group of its own: an abort can end CRIU too, which runc runs as its child.
    { all: true, detached: true, stdio: ['ignore', 'pipe', 'pipe', writer.fd as unknown as 'pipe'] },
  );
  await writer.close();
  const served = child.then(
    () => undefined,
    async (err: unknown) => {
      if (!(err instanceof ExecaError)) throw err;
      throw await criuFailure('runc checkpoint --lazy-pages', path.join(dump.workDir, DUMP_LOG), err);
    },
  );
  served.catch(() => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    status.once('data', () => resolve());
    status.once('end', () => {
      // Without its byte the dump failed before serving; `served` has CRIU's reason.
      served.then(
        () => reject(new CriuError('runc checkpoint --lazy-pages ended before its page server listened', [])),
        reject,
      );
    });
    status.once('error', reject);
  });
  // Whichever way it goes (a finally() of its own would reject again, unobserved, when the dump fails).
  const closeStatus = () => {
    status.destroy();
    rm(fifo, { force: true }).catch(() => undefined);
  };
  ready.then(closeStatus, closeStatus);
  const abort = async () => {
    await hangUp(pageServer);
    const ended = await Promise.race([
      served.then(
        () => true,
        () => true,
      ),
      sleep(ABORT_GRACE_MS).then(() => false),
    ]);
    // CRIU still serves a peer that went silent (a link down stalls TCP for minutes) and holds the tasks seized:
    // ended, it lets them go, and they run on where they froze once thawed.
    if (!ended && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
      await served.catch(() => undefined);
    }
  };
  return { ready, served, abort };
}

/**
 * The lazy dump, once its page server listens. CRIU dumps all but the pages before it listens: a dump that never
 * gets there (a stopped runc or CRIU) is aborted at `readyMs`, so that it cannot hold the workload frozen forever.
 */
export async function servingLazyCheckpoint(
  dump: LazyDump,
  pageServer: PageServerAddress,
  readyMs: number,
): Promise<LazyCheckpoint> {
  const lazy = await runcLazyCheckpoint(dump, pageServer);
  await withDeadline(
    lazy.ready,
    {
      what: 'the lazy dump (runc checkpoint --lazy-pages)',
      ms: readyMs,
      setting: DEADLINES.lazyDump.setting,
    },
    lazy.abort,
  );
  return lazy;
}
