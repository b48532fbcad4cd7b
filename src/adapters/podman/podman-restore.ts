import { access, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import { EngineUnsupportedError } from '../../domain/errors/index.js';
import type { ContainerRestore, LazyRestore } from '../../services/ports/container-runtime.js';
import type { LibpodClient } from './libpod-client.js';
import { linkTree, PODMAN_CHECKPOINT_DIR, PODMAN_RUNTIME_SPEC, podmanBundle } from './podman-bundle.js';
import { podmanCriuFailure } from './podman-criu-failure.js';

/**
 * Restores through Podman's own restore API, so that conmon, the network and Podman's state are Podman's: the
 * checkpoint's images are linked into the container's bundle, where that API reads them. A container that never
 * ran (one cryo created) is initialised and stopped first: Podman's restore reads the runtime spec that only
 * `init` writes, and takes only a configured or exited container.
 */
export class PodmanRestore implements ContainerRestore {
  constructor(private readonly libpod: LibpodClient) {}

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
