import { ImageInvalidError } from '../../domain/errors/index.js';
import type { ImageIdentity } from '../../domain/manifest.js';
import type { EngineImages } from '../../services/ports/container-runtime.js';
import { firstLine, type DockerClient } from './docker-client.js';

/** Docker's images: found by id, name or layers, saved and loaded as `docker save` tars. */
export class DockerImages implements EngineImages {
  constructor(private readonly client: DockerClient) {}

  async imageExists(ref: string): Promise<boolean> {
    return this.client.callOr(async (d) => (await d.getImage(ref).inspect(), true), [404], false);
  }

  async imageLayers(ref: string): Promise<string[] | undefined> {
    const image = await this.client.callOr((d) => d.getImage(ref).inspect(), [404], undefined);
    return image?.RootFS?.Layers;
  }

  async resolveImage(image: ImageIdentity): Promise<string | undefined> {
    if (await this.imageExists(image.id)) return image.id;
    const { layers } = image;
    if (!layers || layers.length === 0) return undefined;
    const same = (candidate: string[] | undefined) =>
      candidate?.length === layers.length && candidate.every((l, i) => l === layers[i]);
    const named = await this.client.callOr((d) => d.getImage(image.ref).inspect(), [404], undefined);
    if (named && same(named.RootFS?.Layers)) return named.Id;
    const all = await this.client.call((d) => d.listImages({ all: false }));
    for (const candidate of all) {
      if (same(await this.imageLayers(candidate.Id))) return candidate.Id;
    }
    return undefined;
  }

  async saveImage(id: string, name?: string): Promise<NodeJS.ReadableStream> {
    const named =
      name === undefined
        ? undefined
        : await this.client.callOr((d) => d.getImage(name).inspect(), [404], undefined);
    // The name may have moved to another image since the container was created: then only the id is sent.
    const ref = named?.Id === id ? name! : id;
    return this.client.call((d) => d.getImage(ref).get());
  }

  async loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    const progress = await this.client.call((d) => d.loadImage(tar));
    await new Promise<void>((resolve, reject) => {
      this.client.api.modem.followProgress(progress, (err: Error | null, output: { error?: string }[]) => {
        // dockerd answers 200 and reports a body it cannot load inside the progress stream.
        const refused = output.find((o) => o.error)?.error;
        if (err) reject(this.client.translate(err));
        else if (refused !== undefined) reject(new ImageInvalidError(loadRefusal(refused)));
        else resolve();
      });
    });
  }
}

/** dockerd's reason without the path of its own scratch directory. */
function loadRefusal(message: string): string {
  return firstLine(message).replace(/open \S*\/docker-import-\d+\//, 'no entry ');
}
