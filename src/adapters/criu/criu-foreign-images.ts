import { access } from 'node:fs/promises';
import path from 'node:path';
import type { ForeignImageFile, ForeignImages } from '../../services/ports/foreign-images.js';
import { externalNetnsImage, netnsImageName, rootNetnsId } from './netns-image.js';

export class CriuForeignImages implements ForeignImages {
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
}
