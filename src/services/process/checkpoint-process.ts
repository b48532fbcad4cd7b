import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint } from '../../domain/checkpoint.js';
import { CheckpointNameInUseError, PreflightFailedError } from '../../domain/errors/index.js';
import { CHECKPOINT_IMAGES_DIR, PROCESS_RECORD } from '../../domain/layout.js';
import type { CriuOptions } from '../../domain/process.js';
import { newId } from '../support/ids.js';
import { publishCheckpoint } from '../checkpoint/publish-checkpoint.js';
import type { ProcessContext } from './deps.js';
import { preflightTree } from './preflight-tree.js';
import type { ProcessRecord } from '../../domain/process-record.js';

export interface ProcessCheckpointBody extends CriuOptions {
  name?: string | undefined;
  leaveRunning: boolean;
  force: boolean;
}

/** Dumps the process tree at `pid` with CRIU into a new checkpoint (kind process). */
export async function checkpointProcess(
  ctx: ProcessContext,
  pid: number,
  body: ProcessCheckpointBody,
): Promise<Checkpoint> {
  const { engine, catalog, store, clock, inspector } = ctx;
  const started = clock.now();
  const release = ctx.locks.acquire(`pid:${pid}`, 'checkpoint', `pid ${pid}`);
  const id = newId(started);
  try {
    const report = await inspector.report(pid);
    const root = report.processes[0]!;
    const name = body.name ?? `checkpoint-${id}`;
    if (catalog.findByName(`pid:${pid}`, name)) throw new CheckpointNameInUseError(root.comm, name);
    const options: CriuOptions = {
      tcpEstablished: body.tcpEstablished,
      fileLocks: body.fileLocks,
      shellJob: body.shellJob,
      externalUnixSockets: body.externalUnixSockets,
    };
    if (!body.force) {
      const { problems } = await preflightTree(ctx, pid, options, { known: report });
      if (problems.length > 0) throw new PreflightFailedError(problems);
    }
    return await publishCheckpoint({ store, catalog }, id, {
      fill: async (dir) => {
        const images = path.join(dir, CHECKPOINT_IMAGES_DIR);
        await mkdir(images);
        const dumpStarted = clock.now();
        const { stats, pids } = await engine.dump(pid, images, {
          ...options,
          leaveRunning: body.leaveRunning,
        });
        const dumpMs = clock.now() - dumpStarted;
        // The tree as CRIU dumped it: children started since the report hold pids, and PID 1 reaps them late.
        const record: ProcessRecord = {
          pid,
          pids: [...new Set([...report.processes.map((p) => p.pid), ...pids])],
          options,
        };
        await writeFile(path.join(dir, PROCESS_RECORD), JSON.stringify(record), { mode: 0o600 });
        return { dumpMs, stats };
      },
      describe: ({ dumpMs, stats }, sizeBytes) => ({
        id,
        name,
        kind: 'process',
        process: { pid, comm: root.comm, cmdline: root.cmdline },
        createdAt: new Date(started).toISOString(),
        leaveRunning: body.leaveRunning,
        sizeBytes,
        stats: { dumpMs, totalMs: clock.now() - started, ...stats },
        status: 'complete',
      }),
    });
  } finally {
    release();
  }
}
