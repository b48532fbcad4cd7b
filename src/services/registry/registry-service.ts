import { Readable } from 'node:stream';
import type { ArchiveFormat, Checkpoint } from '../../domain/checkpoint.js';
import {
  ArchiveInvalidError,
  CheckpointNotExportableError,
  CrossEngineUnsupportedError,
  HostMismatchError,
  RegistryArtifactInvalidError,
  RegistryDecryptionFailedError,
} from '../../domain/errors/index.js';
import type { LayerEncryption, LayerOpening, LayerSeal } from '../ports/layer-encryption.js';
import { ManifestSchema, type Manifest } from '../../domain/manifest.js';
import {
  formatReference,
  OciAnnotation,
  OciManifestSchema,
  OciMediaType,
  type OciDescriptor,
  type OciManifest,
  type RegistryReference,
} from '../../domain/oci-artifact.js';
import type { PushResult } from '../../domain/registry.js';
import type { ArchiveService } from '../archive/archive-service.js';
import type { CheckpointService } from '../checkpoint/checkpoint-service.js';
import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { BlobLocations, RegistryConnection, RegistryConnector } from '../ports/checkpoint-registry.js';
import type { Logger } from '../ports/logger.js';
import { checkingDigest, digestOf, digestStream } from '../support/digest.js';
import { levelsOf } from '../checkpoint/chain.js';
import {
  isPodmanCheckpointImage,
  podmanImageMismatch,
  podmanCheckpointImage,
  podmanLayerProblem,
} from './podman-checkpoint-image.js';

export interface RegistryServiceDeps {
  checkpoints: CheckpointService;
  archives: ArchiveService;
  catalog: CheckpointCatalog;
  connect: RegistryConnector;
  /** The most a pulled checkpoint may hold (CRYO_MAX_IMPORT_BYTES): a layer that claims more is refused unread. */
  maxImportBytes: number;
  /** With recipients configured, every layer pushed is encrypted; pulls open encrypted layers with its keys. */
  encryption?: LayerEncryption;
  /** Where blobs were seen, for cross-repository mounts (default: none, every missing blob is sent). */
  locations?: BlobLocations;
  log?: Logger;
}

type PushBlob = OciDescriptor & { open: () => Promise<Readable> };

/** The tag of a reference that names none, as Docker's. */
const DEFAULT_TAG = 'latest';

/**
 * Checkpoints in an OCI registry: pushed as an image-spec 1.1 artifact (cryo.json as its config, the checkpoint's
 * archive as its layer), pulled back into the catalog with every byte checked before anything is published.
 */
export class RegistryService {
  constructor(private readonly deps: RegistryServiceDeps) {}

  /**
   * Pushes a container checkpoint: a layer per level of its chain, base first. A blob the repository has already
   * (a base pushed with an earlier snapshot) is not sent again.
   */
  async push(
    checkpointId: string,
    reference: RegistryReference,
    format: ArchiveFormat = 'cryo',
  ): Promise<PushResult> {
    const { checkpoints, catalog } = this.deps;
    const checkpoint = checkpoints.get(checkpointId);
    if (checkpoint.kind === 'process') throw new CheckpointNotExportableError(checkpointId);
    if (format === 'podman' && this.deps.encryption?.recipients)
      throw new CrossEngineUnsupportedError(
        'an encrypted checkpoint image',
        "push it as cryo's artifact (format cryo), which is encrypted, or start cryo without CRYO_REGISTRY_ENCRYPTION_KEY",
      );
    const { release } = checkpoints.retain(checkpointId);
    try {
      const registry = await this.deps.connect(reference.registry);
      const { repository } = reference;
      const tag = reference.tag ?? DEFAULT_TAG;
      if (format === 'podman') return await this.pushPodmanImage(checkpoint, registry, reference, tag);
      const config = Buffer.from(JSON.stringify(await checkpoints.completeManifest(checkpointId), null, 2));
      const configDigest = digestOf(config);
      const levels = levelsOf(catalog, checkpoint);
      const blobs: PushBlob[] = [
        {
          mediaType: OciMediaType.CONFIG,
          digest: configDigest,
          size: config.length,
          open: async () => Readable.from([config]),
        },
      ];
      for (const level of levels) {
        const open = async () => (await this.deps.archives.export(level.id, 'none', { level: true })).stream;
        const title = { [OciAnnotation.TITLE]: `${level.name}.tar` };
        const encryption = this.deps.encryption;
        if (encryption?.recipients) {
          const seal = await this.sealOf(level, open, encryption);
          blobs.push({
            mediaType: OciMediaType.LAYER_ENCRYPTED,
            digest: seal.digest,
            size: seal.size,
            annotations: { ...seal.annotations, ...title },
            open: async () => (await open()).pipe(encryption.encrypt(seal).stream),
          });
        } else {
          // A level's archive is deterministic: its digest, once known, is kept with it.
          const layer = level.layer ?? (await digestStream(await open()));
          if (!level.layer) catalog.update({ ...level, layer });
          blobs.push({ mediaType: OciMediaType.LAYER, ...layer, annotations: title, open });
        }
      }
      const layers = await this.sendBlobs(registry, repository, blobs);
      const manifest: OciManifest = {
        schemaVersion: 2,
        mediaType: OciMediaType.MANIFEST,
        artifactType: OciMediaType.CHECKPOINT,
        config: { mediaType: OciMediaType.CONFIG, digest: configDigest, size: config.length },
        layers: blobs.slice(1).map(({ mediaType, digest, size, annotations }) => ({
          mediaType,
          digest,
          size,
          ...(annotations ? { annotations } : {}),
        })),
        annotations: {
          [OciAnnotation.CREATED]: checkpoint.createdAt,
          [OciAnnotation.CHECKPOINT_NAME]: checkpoint.name,
          ...(checkpoint.container ? { [OciAnnotation.CONTAINER_NAME]: checkpoint.container.name } : {}),
        },
      };
      return await this.putManifest(registry, reference, tag, manifest, layers);
    } finally {
      release();
    }
  }

  /** Sends the blobs the repository lacks (HEAD first; a mount where another repository has one). */
  private async sendBlobs(
    registry: RegistryConnection,
    repository: string,
    blobs: PushBlob[],
  ): Promise<PushResult['layers']> {
    const layers: PushResult['layers'] = [];
    for (const blob of blobs) {
      const present = await registry.hasBlob(repository, blob.digest);
      const mounted = !present && (await this.mount(registry, repository, blob.digest));
      if (!present && !mounted) await registry.uploadBlob(repository, blob.digest, blob.size, blob.open);
      layers.push({
        digest: blob.digest,
        size: blob.size,
        uploaded: !present && !mounted,
        ...(mounted ? { mounted } : {}),
      });
    }
    this.deps.locations?.add(
      registry.registry,
      repository,
      blobs.map((b) => b.digest),
    );
    return layers;
  }

  /**
   * A Podman checkpoint image (`podman container checkpoint --create-image`'s format): a plain OCI image whose one
   * layer holds the checkpoint's files at its root, as `--format podman` exports them, and Podman's and CRI-O's
   * annotations; `podman container restore IMAGE` restores it.
   */
  private async pushPodmanImage(
    checkpoint: Checkpoint,
    registry: RegistryConnection,
    reference: RegistryReference,
    tag: string,
  ): Promise<PushResult> {
    const { repository } = reference;
    const manifestOf = await this.deps.checkpoints.completeManifest(checkpoint.id);
    const open = async () =>
      (await this.deps.archives.export(checkpoint.id, 'none', { format: 'podman' })).stream;
    const layer = await digestStream(await open());
    const image = podmanCheckpointImage(manifestOf, checkpoint.createdAt, layer);
    const blobs: PushBlob[] = [
      { ...image.manifest.config, open: async () => Readable.from([image.config]) },
      { ...image.manifest.layers[0]!, open },
    ];
    const layers = await this.sendBlobs(registry, repository, blobs);
    return this.putManifest(registry, reference, tag, image.manifest, layers);
  }

  /** The manifest, once its blobs are there: what the push answers. */
  private async putManifest(
    registry: RegistryConnection,
    reference: RegistryReference,
    tag: string,
    manifest: OciManifest,
    layers: PushResult['layers'],
  ): Promise<PushResult> {
    const digest = await registry.putManifest(
      reference.repository,
      tag,
      Buffer.from(JSON.stringify(manifest)),
    );
    return {
      reference: formatReference({ ...reference, tag }),
      digest,
      layers,
      uploadedBytes: layers.filter((l) => l.uploaded).reduce((n, l) => n + l.size, 0),
    };
  }

  /**
   * How a level's layer is encrypted: as last time while the recipients and the layer are the same (the same key
   * and nonce make the same blob, which the registry then has already), else anew, one pass to learn its digest.
   */
  private async sealOf(
    level: Checkpoint,
    open: () => Promise<Readable>,
    encryption: LayerEncryption,
  ): Promise<LayerSeal> {
    const kept = this.deps.catalog.seal(level.id);
    if (kept && kept.recipients === encryption.recipients && kept.plainDigest === level.layer?.digest)
      return kept;
    const fresh = encryption.seal();
    const { stream, finish } = encryption.encrypt(fresh);
    const { size } = await digestStream((await open()).pipe(stream));
    const seal: LayerSeal = { ...fresh, ...finish(), size };
    // One pass gave the plain digest too: the level's own layer, kept as a plain push keeps it.
    if (level.layer?.digest !== seal.plainDigest)
      this.deps.catalog.update({ ...level, layer: { digest: seal.plainDigest, size } });
    this.deps.catalog.saveSeal(level.id, seal);
    return seal;
  }

  /**
   * A blob another repository of this registry holds (as a push or pull here saw), mounted rather than sent. A
   * mount refused or failed is no failure of the push: the blob is uploaded instead.
   */
  private async mount(registry: RegistryConnection, repository: string, digest: string): Promise<boolean> {
    for (const from of this.deps.locations?.repositories(registry.registry, digest) ?? []) {
      if (from === repository) continue;
      try {
        if (await registry.mountBlob(repository, digest, from)) return true;
      } catch (err) {
        this.deps.log?.warn(
          { err, digest, from, repository },
          'a cross-repository mount failed; the blob is uploaded instead',
        );
      }
    }
    return false;
  }

  /** Deletes what a push put under `reference` (by the digest it answered): a pruned snapshot's tag. */
  async unpush(reference: RegistryReference & { digest: string }): Promise<void> {
    const registry = await this.deps.connect(reference.registry);
    await registry.deleteManifest(reference.repository, reference.digest);
  }

  /**
   * Pulls a checkpoint into the catalog, a level per layer, base first; a level already here (by its layer's
   * digest) is not fetched again. The manifest is checked before any blob is read (its type, its layers, their
   * sizes), and each layer's digest before its level is published. Should any level fail, the levels this pull
   * published are removed again: the catalog is as it was.
   */
  async pull(reference: RegistryReference): Promise<{ checkpoint: Checkpoint; pulled: boolean }> {
    const registry = await this.deps.connect(reference.registry);
    const { repository } = reference;
    const name = formatReference(reference);
    const { bytes } = await registry.getManifest(
      repository,
      reference.digest ?? reference.tag ?? DEFAULT_TAG,
    );
    const oci = parseOciManifest(name, bytes);
    const total = oci.layers.reduce((n, l) => n + l.size, 0);
    if (total > this.deps.maxImportBytes)
      throw new RegistryArtifactInvalidError(
        name,
        `its layers claim ${total} bytes, over the allowed ${this.deps.maxImportBytes} (CRYO_MAX_IMPORT_BYTES)`,
      );
    if (isPodmanCheckpointImage(oci)) return this.pullPodmanImage(registry, repository, name, oci);
    const manifest = requireCryoArtifact(name, oci);
    const config = await this.readConfig(registry, repository, manifest.config, name);
    // The same checkpoint is here already (its container, name and time); another of that name is a conflict.
    const here = this.deps.catalog.findByName(config.container.id, config.checkpoint.name);
    if (here && here.createdAt === config.createdAt) return { checkpoint: here, pulled: false };
    const published: Checkpoint[] = [];
    try {
      let below: Checkpoint | undefined;
      for (const [i, layer] of manifest.layers.entries()) {
        const top = i === manifest.layers.length - 1;
        // An encrypted layer is opened (its key unwrapped) before a byte of it is fetched: its plain digest says
        // whether the level is here already.
        const opening =
          layer.mediaType === OciMediaType.LAYER_ENCRYPTED ? await this.opening(layer, name) : undefined;
        const plain = opening?.plainDigest ?? layer.digest;
        const local = this.deps.catalog
          .list()
          .find((c) => c.layer?.digest === plain && c.chain?.parent === below?.id);
        if (local && !top) {
          below = local;
          continue;
        }
        const checked = checkingDigest(name, layer.digest, layer.size);
        const blob = await registry.getBlob(repository, layer.digest);
        blob.on('error', (err) => checked.destroy(err));
        const bytes = opening ? blob.pipe(checked).pipe(opening.decrypt) : blob.pipe(checked);
        if (opening) checked.on('error', (err) => opening.decrypt.destroy(err));
        below = await this.deps.archives.import(
          bytes,
          undefined,
          (imported) => {
            checked.verify();
            try {
              opening?.verify();
            } catch (err) {
              throw naming(err, name);
            }
            if (top && JSON.stringify(imported) !== JSON.stringify(config))
              throw new RegistryArtifactInvalidError(name, "its top layer's cryo.json is not its config");
          },
          { ...(below ? { parent: below } : {}), layer: { digest: plain, size: layer.size } },
        );
        published.push(below);
      }
      this.deps.locations?.add(registry.registry, repository, [
        manifest.config.digest,
        ...manifest.layers.map((l) => l.digest),
      ]);
      return { checkpoint: below!, pulled: true };
    } catch (err) {
      for (const level of published.reverse()) await this.deps.checkpoints.remove(level.id);
      throw err;
    }
  }

  /**
   * A Podman checkpoint image (`podman container checkpoint --create-image`, or cryo's `--format podman`): its one
   * layer is a Podman archive, imported as one (and restored into Docker); its digest checked before it is published.
   */
  private async pullPodmanImage(
    registry: RegistryConnection,
    repository: string,
    name: string,
    manifest: OciManifest,
  ): Promise<{ checkpoint: Checkpoint; pulled: boolean }> {
    const problem = podmanLayerProblem(manifest);
    if (problem) throw new RegistryArtifactInvalidError(name, problem);
    const mismatch = podmanImageMismatch(manifest, await this.deps.checkpoints.hostFacts());
    if (mismatch) throw new HostMismatchError(mismatch.message, mismatch.hint);
    const layer = manifest.layers[0]!;
    const checked = checkingDigest(name, layer.digest, layer.size);
    const blob = await registry.getBlob(repository, layer.digest);
    blob.on('error', (err) => checked.destroy(err));
    const checkpoint = await this.deps.archives.import(blob.pipe(checked), undefined, () => checked.verify());
    this.deps.locations?.add(registry.registry, repository, [manifest.config.digest, layer.digest]);
    return { checkpoint, pulled: true };
  }

  private async opening(layer: OciDescriptor, name: string): Promise<LayerOpening> {
    if (!this.deps.encryption)
      throw new RegistryDecryptionFailedError('it is encrypted, and no decryption key is configured', name);
    try {
      return await this.deps.encryption.open(layer.annotations);
    } catch (err) {
      throw naming(err, name);
    }
  }

  private async readConfig(
    registry: Awaited<ReturnType<RegistryConnector>>,
    repository: string,
    descriptor: OciDescriptor,
    name: string,
  ): Promise<Manifest> {
    const checked = checkingDigest(name, descriptor.digest, descriptor.size);
    const blob = await registry.getBlob(repository, descriptor.digest);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of blob.pipe(checked)) chunks.push(chunk as Buffer);
      checked.verify();
    } catch (err) {
      blob.destroy();
      throw err instanceof ArchiveInvalidError || err instanceof RegistryArtifactInvalidError
        ? err
        : new RegistryArtifactInvalidError(name, `its config: ${(err as Error).message}`);
    }
    try {
      return ManifestSchema.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch (err) {
      throw new RegistryArtifactInvalidError(
        name,
        `its config is not a cryo.json: ${(err as Error).message}`,
      );
    }
  }
}

/** A decryption failure (the adapter's, which knows no reference) as one that names `reference`. */
function naming(err: unknown, reference: string): unknown {
  return err instanceof RegistryDecryptionFailedError
    ? new RegistryDecryptionFailedError(err.detail, reference)
    : err;
}

/** The manifest, refused unless it is a checkpoint of cryo's as cryo pushes them. */
function parseOciManifest(name: string, bytes: Buffer): OciManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryArtifactInvalidError(name, 'its manifest is not JSON');
  }
  const parsed = OciManifestSchema.safeParse(json);
  if (!parsed.success)
    throw new RegistryArtifactInvalidError(
      name,
      `its manifest: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  return parsed.data;
}

function requireCryoArtifact(name: string, manifest: OciManifest): OciManifest {
  if (manifest.artifactType !== OciMediaType.CHECKPOINT || manifest.config.mediaType !== OciMediaType.CONFIG)
    throw new RegistryArtifactInvalidError(
      name,
      `its artifact type is ${manifest.artifactType ?? 'none'}, not a cryo checkpoint (${OciMediaType.CHECKPOINT})`,
    );
  if (manifest.layers.length === 0) throw new RegistryArtifactInvalidError(name, 'it has no layers');
  const foreign = manifest.layers.find(
    (l) => l.mediaType !== OciMediaType.LAYER && l.mediaType !== OciMediaType.LAYER_ENCRYPTED,
  );
  if (foreign) throw new RegistryArtifactInvalidError(name, `it has a layer of type ${foreign.mediaType}`);
  // A chain that names a level twice would loop.
  if (new Set(manifest.layers.map((l) => l.digest)).size !== manifest.layers.length)
    throw new RegistryArtifactInvalidError(name, 'it names a layer twice: its chain loops');
  if (manifest.config.size > 4 * 1024 * 1024)
    throw new RegistryArtifactInvalidError(name, `its config claims ${manifest.config.size} bytes`);
  return manifest;
}
