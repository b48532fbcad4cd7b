import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { RestoredContainer } from '../../domain/checkpoint.js';
import { ContainerNameInUseError } from '../../domain/errors/index.js';
import { LABEL_RESTORED_FROM } from '../../domain/labels.js';
import type {
  ContainerInfo,
  ContainerLifecycle,
  CreateTarget,
  EngineInfo,
} from '../../services/ports/container-runtime.js';
import { toCreateOptions } from './create-options.js';
import { CRYO_RUNTIME, type CryoRuntimeRestore } from './cryo-runtime-restore.js';
import type { DockerClient } from './docker-client.js';
import { singleFileTar } from './single-file-tar.js';

/** Docker's containers: find, create, start, stop, remove, and what cryo restored. */
export class DockerLifecycle implements ContainerLifecycle {
  constructor(
    private readonly client: DockerClient,
    private readonly engine: EngineInfo,
    private readonly runtimeRestore: CryoRuntimeRestore,
    private readonly execRoot: string,
  ) {}

  async inspect(ref: string): Promise<ContainerInfo | undefined> {
    const raw = await this.client.callOr((d) => d.getContainer(ref).inspect(), [404], undefined);
    if (!raw) return undefined;
    return {
      id: raw.Id,
      name: raw.Name.replace(/^\//, ''),
      image: raw.Config.Image,
      imageId: raw.Image,
      running: raw.State.Running,
      paused: raw.State.Paused,
      state: raw.State.Status,
      pid: raw.State.Pid,
      tty: raw.Config.Tty === true,
      config: raw,
    };
  }

  async listRestored(checkpointId?: string): Promise<RestoredContainer[]> {
    const label = checkpointId === undefined ? LABEL_RESTORED_FROM : `${LABEL_RESTORED_FROM}=${checkpointId}`;
    const list = await this.client.call((d) => d.listContainers({ all: true, filters: { label: [label] } }));
    return Promise.all(
      list.map(async (c) => {
        const pages = await this.runtimeRestore.lazyPages(c.Id);
        return {
          id: c.Id,
          name: (c.Names[0] ?? '').replace(/^\//, ''),
          running: c.State === 'running',
          restoredFrom: c.Labels[LABEL_RESTORED_FROM] ?? '',
          ...(pages ? { pages } : {}),
        };
      }),
    );
  }

  async createFromConfig(
    config: unknown,
    { name, labels, ports, imageId, keepVolumes }: CreateTarget,
  ): Promise<{ id: string; name: string }> {
    const options = { ...toCreateOptions(config, name, labels, ports, keepVolumes), Image: imageId };
    // A new container runs under cryo's runtime wherever dockerd has it, so that restores take its path.
    if ((await this.engine.version()).cryoRuntime)
      options.HostConfig = { ...options.HostConfig, Runtime: CRYO_RUNTIME };
    const created = await this.client.callOr((d) => d.createContainer(options), [409], undefined);
    if (!created) throw new ContainerNameInUseError(name);
    return { id: created.id, name };
  }

  async rename(containerId: string, name: string): Promise<void> {
    await this.client.call((d) => d.getContainer(containerId).rename({ name }));
  }

  async remove(containerId: string): Promise<void> {
    await this.client.callOr(
      (d) => d.getContainer(containerId).remove({ force: true, v: false }),
      [404],
      undefined,
    );
  }

  async start(containerId: string): Promise<void> {
    await this.client.call((d) => d.getContainer(containerId).start());
  }

  async stop(containerId: string): Promise<void> {
    // 304: already stopped.
    await this.client.callOr((d) => d.getContainer(containerId).stop({ t: 5 }), [304], undefined);
  }

  async putFile(containerId: string, file: string, content: Buffer): Promise<void> {
    await this.client.call((d) =>
      d.getContainer(containerId).putArchive(singleFileTar(file, content), { path: '/' }),
    );
  }

  async runtimeSpec(containerId: string): Promise<unknown> {
    const bundle = path.join(
      this.execRoot,
      'containerd/daemon/io.containerd.runtime.v2.task/moby',
      containerId,
    );
    const text = await readFile(path.join(bundle, 'config.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  }

  async volumeNames(): Promise<Set<string>> {
    const list = await this.client.call((d) => d.listVolumes());
    return new Set((list.Volumes ?? []).map((v: Docker.VolumeInspectInfo) => v.Name));
  }
}
