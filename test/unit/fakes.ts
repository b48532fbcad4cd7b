import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RestoredContainer } from '../../src/domain/checkpoint.js';
import { LABEL_RESTORED_FROM } from '../../src/domain/labels.js';
import { HostIntentKind } from '../../src/domain/host-intent.js';
import type { HostJournal } from '../../src/services/ports/host-journal.js';
import type { Dumper } from '../../src/domain/preflight.js';
import type { ProcessReport } from '../../src/domain/process.js';
import type { ProcessInspector } from '../../src/services/ports/process-inspector.js';
import type { MountRecord } from '../../src/domain/manifest.js';
import type { RootfsChanges, RootfsSource, RootfsSummary } from '../../src/services/ports/rootfs-changes.js';
import type { DumpResult, EngineRestoreResult } from '../../src/services/ports/checkpoint-engine.js';
import type { CheckpointEngine } from '../../src/services/ports/checkpoint-engine.js';
import type {
  CheckpointRequest,
  RuntimeCheckpointResult,
  ContainerInfo,
  ContainerRuntime,
  CreateTarget,
  RuntimeVersion,
  PageServerAddress,
} from '../../src/services/ports/container-runtime.js';
import { RootfsUnsupportedError } from '../../src/domain/errors/index.js';
import type { ImageIdentity } from '../../src/domain/manifest.js';

/** An in-memory ContainerRuntime for unit tests of services and routes (never for integration tests). */
export class FakeRuntime implements ContainerRuntime {
  containers = new Map<string, ContainerInfo>();
  calls: string[] = [];
  failCheckpoint: Error | undefined;
  /** Makes the engine's view fail to settle after an otherwise good dump. */
  failSettle: Error | undefined;
  /** When set, a checkpoint waits for it before dumping (to hold a run in progress). */
  checkpointGate: Promise<void> | undefined;
  failRestore: Error | undefined;
  /** When set, a restore waits for it before the container runs (to hold a restore in progress). */
  restoreGate: Promise<void> | undefined;
  experimental = true;
  images = new Set(['sha256:1']);

  add({
    labels,
    ...info
  }: Partial<ContainerInfo> & { id: string; name: string; labels?: Record<string, string> }): ContainerInfo {
    const full: ContainerInfo = {
      image: 'img:1',
      imageId: 'sha256:1',
      running: true,
      paused: false,
      state: 'running',
      pid: 1234,
      tty: false,
      ...info,
      config: {
        Id: info.id,
        Name: `/${info.name}`,
        Created: new Date(0).toISOString(),
        Image: info.imageId ?? 'sha256:1',
        Config: { Image: info.image ?? 'img:1', Labels: labels ?? {} },
      },
    };
    this.containers.set(full.id, full);
    return full;
  }

  /** Whether dockerd lists cryo's runtime. */
  cryoRuntime = true;

  async version(): Promise<RuntimeVersion> {
    return {
      engine: 'docker',
      version: '20.10.24',
      experimental: this.experimental,
      storageDriver: 'overlay2',
      containerdStore: false,
      cryoRuntime: this.cryoRuntime,
      defaultRuntime: 'runc',
      restorePath: 'cryo-runtime',
    };
  }

  async inspect(ref: string): Promise<ContainerInfo | undefined> {
    return [...this.containers.values()].find((c) => c.id === ref || c.name === ref || c.id.startsWith(ref));
  }

  /** Which checkpoint each container that createFromConfig made was restored from (its label). */
  restoredFrom = new Map<string, string>();

  async listRestored(checkpointId?: string): Promise<RestoredContainer[]> {
    return [...this.restoredFrom]
      .filter(
        ([id, from]) => this.containers.has(id) && (checkpointId === undefined || from === checkpointId),
      )
      .map(([id, from]) => {
        const c = this.containers.get(id)!;
        return { id, name: c.name, running: c.running, restoredFrom: from };
      });
  }

  async checkpoint(containerId: string, request: CheckpointRequest): Promise<RuntimeCheckpointResult> {
    this.calls.push(`checkpoint ${containerId}`);
    if (this.checkpointGate) await this.checkpointGate;
    if (this.failCheckpoint) throw this.failCheckpoint;
    const dir = path.join(request.parentDir, request.checkpointId);
    await mkdir(dir);
    await writeFile(path.join(dir, 'inventory.img'), 'x'.repeat(100));
    if (request.exit) this.set(containerId, { running: false, state: 'exited' });
    const settled = this.failSettle ? Promise.reject(this.failSettle) : Promise.resolve();
    settled.catch(() => undefined);
    if (request.holdFrozen) this.calls.push(`hold frozen ${containerId}`);
    if (request.heldBy !== undefined) {
      this.frozen.add(containerId);
      // As RuncDump: the freeze is journaled for its migration, which ends the entry.
      this.journal?.begin({ kind: HostIntentKind.FROZEN, containerId, heldBy: request.heldBy });
      if (this.heldGate) await this.heldGate;
    }
    const thaw = async () => {
      if (request.holdFrozen) this.calls.push(`thaw ${containerId}`);
      this.frozen.delete(containerId);
    };
    if (request.lazyPages) {
      this.calls.push(`serve pages ${containerId} ${request.lazyPages.address}:${request.lazyPages.port}`);
      const served = this.pagesServed ?? Promise.resolve();
      const abort = async () => {
        this.calls.push(`abort page server ${containerId}`);
      };
      return { stats: {}, path: 'runc', settled, thaw, pages: { served, abort } };
    }
    return { stats: { frozenMs: 5 }, path: 'runc', settled, thaw };
  }

  async ensureNotFrozen(containerId: string): Promise<void> {
    this.calls.push(`ensureNotFrozen ${containerId}`);
    this.frozen.delete(containerId);
  }

  /** Containers a dump keeps frozen for a migration (heldBy): Docker shows them running, but they do not run. */
  frozen = new Set<string>();
  /** Whether checkpoints can keep a container frozen (cryo's runc path); false: Docker's checkpoint API. */
  holds = true;
  /** Where a held freeze is journaled, as the real runtime does. */
  journal: HostJournal | undefined;

  async thawFrozen(containerId: string): Promise<void> {
    this.calls.push(`thawFrozen ${containerId}`);
    this.frozen.delete(containerId);
  }

  resumeLazyRestores(): void {}

  async canHoldFrozen(): Promise<boolean> {
    return this.holds;
  }

  /** Page servers hung up on (a restarted cryo ending a post-copy's). */
  hungUp: PageServerAddress[] = [];

  async hangUpPageServer(address: PageServerAddress): Promise<void> {
    this.hungUp.push(address);
  }

  async stopFrozen(containerId: string): Promise<void> {
    this.calls.push(`stopFrozen ${containerId}`);
    if (this.failStopFrozen) throw this.failStopFrozen;
    this.frozen.delete(containerId);
    this.set(containerId, { running: false, state: 'exited' });
  }

  failStopFrozen: Error | undefined;
  /** How a lazy dump's page server ends (default: at once, well). */
  pagesServed: Promise<void> | undefined;
  /** When set, a dump that holds the container frozen waits for it once frozen (a crash before the checkpoint). */
  heldGate: Promise<void> | undefined;

  async restoresInPlace(): Promise<boolean> {
    return true;
  }

  async rename(containerId: string, name: string): Promise<void> {
    const c = this.containers.get(containerId);
    if (c) c.name = name;
    this.calls.push(`rename ${containerId} ${name}`);
  }

  async createFromConfig(
    _config: unknown,
    { name, labels }: CreateTarget,
  ): Promise<{ id: string; name: string }> {
    const id = `new${name}`.padEnd(64, '0');
    this.add({ id, name, running: false, state: 'created', labels });
    const from = labels[LABEL_RESTORED_FROM];
    if (from !== undefined) this.restoredFrom.set(id, from);
    this.calls.push(`create ${name}`);
    return { id, name };
  }

  async restore(containerId: string): Promise<void> {
    this.calls.push(`restore ${containerId}`);
    if (this.restoreGate) await this.restoreGate;
    if (this.failRestore) throw this.failRestore;
    this.set(containerId, { running: true, state: 'running' });
  }

  async remove(containerId: string): Promise<void> {
    this.calls.push(`remove ${containerId}`);
    this.containers.delete(containerId);
  }

  async start(containerId: string): Promise<void> {
    this.calls.push(`start ${containerId}`);
    this.set(containerId, { running: true, state: 'running' });
  }

  async stop(containerId: string): Promise<void> {
    this.calls.push(`stop ${containerId}`);
    this.set(containerId, { running: false, state: 'exited' });
  }

  readonly files = new Map<string, Buffer>();

  async putFile(containerId: string, file: string, content: Buffer): Promise<void> {
    this.calls.push(`put ${containerId} ${file}`);
    this.files.set(`${containerId}:${file}`, content);
  }

  async runtimeSpec(): Promise<unknown> {
    return { ociVersion: '1.0.2', annotations: {} };
  }

  async imageExists(ref: string): Promise<boolean> {
    return this.images.has(ref);
  }

  async imageLayers(ref: string): Promise<string[] | undefined> {
    return this.images.has(ref) ? [] : undefined;
  }

  async resolveImage(image: ImageIdentity): Promise<string | undefined> {
    return this.images.has(image.id) ? image.id : undefined;
  }

  async saveImage(): Promise<NodeJS.ReadableStream> {
    throw new Error('FakeRuntime has no images to save');
  }

  async loadImage(): Promise<void> {
    throw new Error('FakeRuntime cannot load images');
  }

  async volumeNames(): Promise<Set<string>> {
    return new Set();
  }

  private set(id: string, patch: Partial<ContainerInfo>): void {
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, ...patch });
  }
}

export class FakeEngine implements CheckpointEngine {
  postCopy: { ok: boolean; reason?: string } = { ok: true };
  async postCopySupport(): Promise<{ ok: boolean; reason?: string }> {
    return this.postCopy;
  }
  async version(): Promise<string> {
    return '4.2.1';
  }
  async check(): Promise<void> {}
  async dump(): Promise<DumpResult> {
    throw new Error('FakeEngine does not dump processes');
  }
  async restore(): Promise<EngineRestoreResult> {
    throw new Error('FakeEngine does not restore processes');
  }
}

export class FakeRootfs implements RootfsChanges {
  applied: string[] = [];
  /** Where `record` notes itself (a runtime's call list, to see it between the freeze and the thaw). */
  constructor(private readonly calls: string[] = []) {}
  /** A storage driver cryo cannot read. */
  unsupported: string | undefined;
  /** What `record` reports it found. */
  found: RootfsSummary = { changed: 0, deleted: 0 };
  async prepare(containerId: string): Promise<RootfsSource> {
    if (this.unsupported) throw new RootfsUnsupportedError(this.unsupported);
    return { containerId, upper: '/nonexistent/upper', lowers: [], mounts: [] };
  }
  async record({ containerId }: RootfsSource, dir: string): Promise<RootfsSummary> {
    this.calls.push(`rootfs ${containerId}`);
    await writeFile(path.join(dir, 'rootfs-diff.tar'), '');
    await writeFile(path.join(dir, 'deleted.files'), '[]');
    return this.found;
  }
  async apply(containerId: string): Promise<void> {
    this.applied.push(containerId);
  }
  async recordMounts(): Promise<MountRecord[]> {
    return [];
  }
  async applyVolumes(): Promise<void> {}
  async flush(): Promise<void> {}
}

/** The host the fakes run on, as manifests record it. */
export const TEST_HOST = { kernel: '6.18.0-test', arch: 'x86_64', hostname: 'unit-test' };

/** A process inspector that sees an empty, harmless tree. */
export class FakeInspector implements ProcessInspector {
  async exists(): Promise<boolean> {
    return true;
  }
  async liveness(): Promise<'running' | 'zombie' | 'gone'> {
    return 'gone';
  }
  async residentBytes(): Promise<number> {
    return 64 << 20;
  }
  async report(root: number): Promise<ProcessReport> {
    return { root, processes: [] };
  }
  async dumper(): Promise<Dumper> {
    return { uid: 0, gid: 0, sysResource: true };
  }
}
