import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CheckpointEngine } from '../../src/services/checkpoint-engine.js';
import type {
  CheckpointRequest,
  ContainerInfo,
  ContainerRuntime,
  RuntimeVersion,
} from '../../src/services/container-runtime.js';

/** An in-memory ContainerRuntime for unit tests of services and routes (never for integration tests). */
export class FakeRuntime implements ContainerRuntime {
  containers = new Map<string, ContainerInfo>();
  calls: string[] = [];
  failCheckpoint: Error | undefined;
  failRestore: Error | undefined;
  experimental = true;

  add(info: Partial<ContainerInfo> & { id: string; name: string }): ContainerInfo {
    const full: ContainerInfo = {
      image: 'img:1',
      imageId: 'sha256:1',
      running: true,
      paused: false,
      state: 'running',
      pid: 1234,
      config: { Id: info.id },
      ...info,
    };
    this.containers.set(full.id, full);
    return full;
  }

  async version(): Promise<RuntimeVersion> {
    return { version: '20.10.24', experimental: this.experimental };
  }

  async inspect(ref: string): Promise<ContainerInfo | undefined> {
    return [...this.containers.values()].find((c) => c.id === ref || c.name === ref || c.id.startsWith(ref));
  }

  async checkpoint(containerId: string, request: CheckpointRequest): Promise<void> {
    this.calls.push(`checkpoint ${containerId}`);
    if (this.failCheckpoint) throw this.failCheckpoint;
    const dir = path.join(request.parentDir, request.checkpointId);
    await mkdir(dir);
    await writeFile(path.join(dir, 'inventory.img'), 'x'.repeat(100));
    if (request.exit) this.set(containerId, { running: false, state: 'exited' });
  }

  async ensureNotFrozen(containerId: string): Promise<void> {
    this.calls.push(`ensureNotFrozen ${containerId}`);
  }

  async createFromConfig(_config: unknown, name: string): Promise<{ id: string; name: string }> {
    const id = `new${name}`.padEnd(64, '0');
    this.add({ id, name, running: false, state: 'created' });
    this.calls.push(`create ${name}`);
    return { id, name };
  }

  async restore(containerId: string): Promise<void> {
    this.calls.push(`restore ${containerId}`);
    if (this.failRestore) throw this.failRestore;
    this.set(containerId, { running: true, state: 'running' });
  }

  async remove(containerId: string): Promise<void> {
    this.calls.push(`remove ${containerId}`);
    this.containers.delete(containerId);
  }

  private set(id: string, patch: Partial<ContainerInfo>): void {
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, ...patch });
  }
}

export class FakeEngine implements CheckpointEngine {
  async version(): Promise<string> {
    return '4.2.1';
  }
  async check(): Promise<void> {}
}
