import type { ApplicationMode, Checkpoint } from '../../domain/checkpoint.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import type { ApplicationCut, SidecarService } from '../sidecar/sidecar-service.js';
import { fallbackSpec } from '../support/engine-configs.js';
import { checkpointRecord } from './begin-checkpoint.js';
import type { CheckpointContext } from './context.js';
import { applicationOf, writeMetadata } from './manifest.js';
import { publishCheckpoint } from './publish-checkpoint.js';

export interface ApplicationOnlyJob {
  container: ContainerInfo;
  id: string;
  name: string;
  started: number;
  mode: ApplicationMode;
  sidecar: SidecarService;
}

/** `application: "only"`: the job's operator state without CRIU; nothing is frozen. */
export async function createApplicationOnly(
  ctx: CheckpointContext,
  job: ApplicationOnlyJob,
): Promise<Checkpoint> {
  const { container, id, name, started, mode, sidecar } = job;
  const { catalog, store, clock, runtime } = ctx;
  const createdAt = new Date(started);
  const spec = (await runtime.runtimeSpec(container.id)) ?? fallbackSpec(container.config);
  let cut: ApplicationCut | undefined;
  let checkpoint: Checkpoint;
  try {
    checkpoint = await publishCheckpoint({ store, catalog }, id, {
      fill: async (dir) => {
        cut = await sidecar.cut(container.pid, { dir, publishedDir: store.path(id), mode, keepOpen: true });
        const dumpMs = clock.now() - started;
        await writeMetadata(dir, {
          container,
          spec,
          imageLayers: await runtime.imageLayers(container.imageId),
          createdAt,
          source: { ...ctx.host, criuVersion: '' },
          mounts: [],
          rootfs: { changed: 0, deleted: 0 },
          checkpoint: {
            id,
            name,
            leaveRunning: true,
            dumpMs,
            processImage: false,
            application: applicationOf(cut),
          },
        });
        return { dumpMs, cut };
      },
      describe: ({ dumpMs, cut: c }, sizeBytes) =>
        checkpointRecord(job, createdAt, {
          leaveRunning: true,
          processImage: false,
          application: applicationOf(c),
          sizeBytes,
          stats: { dumpMs, totalMs: clock.now() - started },
        }),
    });
  } catch (err) {
    if (cut) await sidecar.finish(container.pid, cut, 'abort');
    throw err;
  }
  await sidecar.finish(container.pid, cut!, 'complete');
  return checkpoint;
}
