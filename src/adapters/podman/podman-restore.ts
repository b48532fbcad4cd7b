import { access, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import { CRIU_CONFIG_ANNOTATION, CROSS_ENGINE_CRIU_CONFIG } from '../../domain/cross-engine.js';
import { EngineUnsupportedError } from '../../domain/errors/index.js';
import type { ContainerRestore, LazyRestore } from '../../services/ports/container-runtime.js';
import type { ForeignImages } from '../../services/ports/foreign-images.js';
import type { LibpodClient } from './libpod-client.js';
import { linkTree, PODMAN_CHECKPOINT_DIR, PODMAN_RUNTIME_SPEC, podmanBundle } from './podman-bundle.js';
import { podmanCriuFailure } from './podman-criu-failure.js';

/**
 * Restores through Podman's own restore API, so that conmon, the network and Podman's state are Podman's: the
 * checkpoint's images are linked into the container's bundle, where that API reads them. A container that never
 * ran (one cryo created) is initialised and stopped first: Podman's restore reads the runtime spec that only
 * `init` writes, and takes only a configured or exited container. Images Docker dumped (a migration's, an
 * import's) get what Podman's restore needs beside them (`foreign`).
 */
export class PodmanRestore implements ContainerRestore {
  constructor(
    private readonly libpod: LibpodClient,
    private readonly foreign?: ForeignImages,
  ) {}

  async restoresInPlace(): Promise<boolean> {
    return true;
  }

  async restore(
    containerId: string,
    imagesDir: string,
    criu: ContainerCriuOptions,
    lazy?: LazyRestore,
  ): Promise<void> {
    if (lazy) throw new EngineUnsupportedError('a post-copy restore', 'restore the whole checkpoint');
    if (criu.externalUnixSockets || criu.ghostLimitBytes !== undefined)
      throw new EngineUnsupportedError(
        'a checkpoint dumped with externalUnixSockets or ghostLimitBytes',
        'restore it on Docker',
      );
    const id = encodeURIComponent(containerId);
    const bundle = await podmanBundle(this.libpod, containerId);
    const ran = await access(path.join(bundle.StaticDir, PODMAN_RUNTIME_SPEC)).then(
      () => true,
      () => false,
    );
    if (!ran) {
      await this.libpod.post(`/containers/${id}/init`, {});
      await this.libpod.post(`/containers/${id}/stop`, { timeout: '0' });
    }
    const images = path.join(bundle.StaticDir, PODMAN_CHECKPOINT_DIR);
    await rm(images, { recursive: true, force: true });
    try {
      await linkTree(imagesDir, images);
      // Only Docker's dumps lack what Podman's restore needs (the external network namespace).
      const missing = (await this.foreign?.forPodman(imagesDir)) ?? [];
      for (const file of missing) await writeFile(path.join(images, file.name), file.body, { mode: 0o600 });
      if (missing.length > 0) await nameCrossEngineConfig(path.join(bundle.StaticDir, PODMAN_RUNTIME_SPEC));
      await this.libpod.post(`/containers/${id}/restore`, {
        tcpEstablished: criu.tcpEstablished,
        fileLocks: criu.fileLocks,
        // The checkpoint's addresses may be another container's by now; Podman gives new ones.
        ignoreStaticIP: true,
        ignoreStaticMAC: true,
        printStats: true,
      });
    } catch (err) {
      throw await podmanCriuFailure('the restore', err);
    } finally {
      // Podman removes them after a restore that succeeds; a failed one leaves them.
      await rm(images, { recursive: true, force: true });
    }
  }

  resumeLazyRestores(): void {
    // No lazy restores on Podman.
  }
}

/**
 * Podman's restore reads the runtime spec `init` wrote and keeps its annotations: the one naming the CRIU
 * configuration for Docker's dumps (domain/cross-engine.ts) reaches runc. Podman writes the file again at each start.
 */
async function nameCrossEngineConfig(specFile: string): Promise<void> {
  const spec = JSON.parse(await readFile(specFile, 'utf8')) as { annotations?: Record<string, string> };
  spec.annotations = { ...spec.annotations, [CRIU_CONFIG_ANNOTATION]: CROSS_ENGINE_CRIU_CONFIG };
  await writeFile(`${specFile}.cryo`, JSON.stringify(spec), { mode: 0o600 });
  await rename(`${specFile}.cryo`, specFile);
}
