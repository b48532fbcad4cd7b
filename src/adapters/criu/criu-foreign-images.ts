import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ForeignImageFile, ForeignImages } from '../../services/ports/foreign-images.js';
import { dumpedMachine } from './core-image.js';
import { externalNetnsImage, namesExternalNetns, netnsImageName, rootNetnsId } from './netns-image.js';

/** Podman bind-mounts this file into every container (libpod: .containerenv); CRIU's images name the mount. */
const PODMAN_CONTAINERENV = '/run/.containerenv';
const ROOT_TASK_CORE = 'core-1.img';

export class CriuForeignImages implements ForeignImages {
  /** `dir`: cryo's own, for the host files that restored containers bind-mount. */
  constructor(private readonly dir: string) {}

  async forPodman(imagesDir: string): Promise<ForeignImageFile[]> {
    const id = await rootNetnsId(imagesDir);
    if (id === undefined) return [];
    const name = netnsImageName(id);
    const present = await access(path.join(imagesDir, name)).then(
      () => true,
      () => false,
    );
    return present ? [] : [{ name, body: externalNetnsImage() }];
  }

  async fromPodman(imagesDir: string): Promise<{ machine: string | undefined }> {
    const id = await rootNetnsId(imagesDir);
    if (id !== undefined) {
      const file = path.join(imagesDir, netnsImageName(id));
      const buf = await readFile(file).catch(() => undefined);
      if (buf && namesExternalNetns(buf, file)) await rm(file);
    }
    return { machine: await dumpedMachine(path.join(imagesDir, ROOT_TASK_CORE)) };
  }

  async podmanBindFiles(): Promise<Record<string, string>> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const containerenv = path.join(this.dir, 'containerenv');
    await writeFile(containerenv, '', { mode: 0o644, flag: 'a' });
    return { [PODMAN_CONTAINERENV]: containerenv };
  }
}
