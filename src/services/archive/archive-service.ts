import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import type {
  ArchiveFormat,
  Checkpoint,
  CheckpointChain,
  Compression,
  MigrationMark,
} from '../../domain/checkpoint.js';
import {
  ArchiveInvalidError,
  CheckpointNameInUseError,
  CheckpointNotExportableError,
  CrossEngineUnsupportedError,
} from '../../domain/errors/index.js';
import {
  CHECKPOINT_IMAGES_DIR,
  DOCKER_CONFIG,
  OPERATORS_DIR,
  OPERATORS_METADATA,
  operatorCheckpointDir,
  CRIU_INVENTORY,
} from '../../domain/layout.js';
import { recordChain } from '../checkpoint/record-chain.js';
import { readManifest } from '../checkpoint/manifest.js';
import { notPortableToPodman } from '../support/engine-configs.js';
import { adoptPodmanArchive } from './adopt-podman-archive.js';
import type { Manifest } from '../../domain/manifest.js';
import type { ArchiveCodec } from '../ports/archive-codec.js';
import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { CheckpointService } from '../checkpoint/checkpoint-service.js';
import { newId } from '../support/ids.js';
import type { Clock } from '../ports/clock.js';
import { DiskGuard, requireRoom } from '../support/disk-guard.js';
import { errorCode, measured, NO_METRICS, type Metrics } from '../ports/metrics.js';
import type { ImageStore } from '../ports/image-store.js';
import { publishCheckpoint } from '../checkpoint/publish-checkpoint.js';
import { inBackground } from '../support/background.js';
import { NO_LOGGER, type Logger } from '../ports/logger.js';
import type { ImageChain } from '../ports/image-chain.js';
import type { ForeignImages } from '../ports/foreign-images.js';
import type { ArchiveExtra } from '../ports/archive-codec.js';

export interface ArchiveServiceDeps {
  checkpoints: CheckpointService;
  catalog: CheckpointCatalog;
  store: ImageStore;
  codec: ArchiveCodec;
  clock: Clock;
  maxImportBytes: number;
  /** Refuses an import whose entries would go below the data directory's floor (default: no floor). */
  guard?: DiskGuard;
  metrics?: Metrics;
  /** Incremental checkpoints: an imported level's link to its parent. */
  chain?: ImageChain;
  /** What another engine's restore needs beside the images (format `podman`). */
  foreign?: ForeignImages;
  log?: Logger;
}

/** What a registry pull knows of a level it imports: the level below it, and its layer. */
export interface ImportedLevel {
  parent?: Checkpoint;
  layer?: { digest: string; size: number };
}

export interface ExportedArchive {
  stream: Readable;
  filename: string;
  contentType: string;
  /** The archive's size, where it is known before the first byte (uncompressed): a cut transfer shows as one. */
  sizeBytes?: number;
}

const CONTENT_TYPES: Record<Compression, { type: string; ext: string }> = {
  none: { type: 'application/x-tar', ext: 'tar' },
  gzip: { type: 'application/gzip', ext: 'tar.gz' },
  zstd: { type: 'application/zstd', ext: 'tar.zst' },
};

/** Exports checkpoints as self-contained, verifiable archives and imports them. */
export class ArchiveService {
  constructor(private readonly deps: ArchiveServiceDeps) {}

  /**
   * An archive that stands alone: an incremental checkpoint's is flattened (its parents' pages copied in). With
   * `level`, an incremental checkpoint's own files only, whose import needs its parent there (a registry layer).
   * Format `podman` is Podman's `--export` layout: no cryo.json, and what Podman's restore needs (ForeignImages);
   * cryo imports it back as any Podman archive.
   */
  async export(
    id: string,
    compress: Compression,
    options: { level?: boolean; format?: ArchiveFormat } = {},
  ): Promise<ExportedArchive> {
    if (this.deps.checkpoints.get(id).kind === 'process') throw new CheckpointNotExportableError(id);
    const { checkpoint, dir, release } = this.deps.checkpoints.retain(id);
    let discard: (() => Promise<void>) | undefined;
    try {
      if (options.format === 'podman') await requirePortableToPodman(dir);
      let from = dir;
      let manifest: Manifest;
      if (checkpoint.chain?.parent !== undefined && !options.level) {
        const flat = await this.deps.checkpoints.flattened(id);
        ({ dir: from, manifest, discard } = flat);
      } else {
        manifest = await this.deps.checkpoints.completeManifest(id);
      }
      const foreign = options.format === 'podman' ? { extra: await this.podmanExtra(from) } : undefined;
      const sizeBytes = compress === 'none' && !foreign ? this.deps.codec.packedSize(manifest) : undefined;
      const packed = this.deps.codec.pack(from, manifest, compress, foreign);
      // A stream that would not end at the size announced fails, rather than end short or long of it.
      const stream = sizeBytes === undefined ? packed : pipeline(packed, exactly(sizeBytes), () => undefined);
      const done = discard;
      stream.once('close', () => {
        release();
        if (done) inBackground(this.deps.log ?? NO_LOGGER, `removing the flattened copy of ${id}`, done());
      });
      this.measureStream(stream, compress);
      const { type, ext } = CONTENT_TYPES[compress];
      return {
        stream,
        filename: `${checkpoint.container?.name ?? checkpoint.process?.comm ?? 'checkpoint'}-${checkpoint.name}.${ext}`,
        contentType: type,
        ...(sizeBytes === undefined ? {} : { sizeBytes }),
      };
    } catch (err) {
      release();
      await discard?.();
      throw err;
    }
  }

  /**
   * With `migration`, the checkpoint is that migration's: its sweeper removes it after the retention period.
   * `verify` runs once every byte has been read, before anything is published: throwing there publishes nothing.
   */
  import(
    input: Readable,
    migration?: MigrationMark,
    verify?: (manifest: Manifest) => void,
    level: ImportedLevel = {},
  ): Promise<Checkpoint> {
    return measured(this.deps.metrics ?? NO_METRICS, 'import', 'archive', () =>
      this.importArchive(input, migration, verify, level),
    );
  }

  private adoptPodman(dir: string, id: string): Promise<Manifest> {
    const { codec, foreign, clock } = this.deps;
    return adoptPodmanArchive(dir, id, new Date(clock.now()), { codec, foreign: foreign! });
  }

  private async podmanExtra(dir: string): Promise<ArchiveExtra[]> {
    if (!this.deps.foreign) throw new Error('Podman exports are not wired: no foreign images');
    const files = await this.deps.foreign.forPodman(path.join(dir, CHECKPOINT_IMAGES_DIR));
    return files.map((f) => ({ name: `${CHECKPOINT_IMAGES_DIR}/${f.name}`, body: f.body }));
  }

  /** An export lasts until its stream has ended; one closed before its end (an error, a client gone) failed. */
  private measureStream(stream: Readable, compress: Compression): void {
    const metrics = this.deps.metrics ?? NO_METRICS;
    const started = performance.now();
    metrics.inFlight('export', 1);
    let failure: unknown;
    stream.once('error', (err) => (failure = err));
    stream.once('close', () => {
      metrics.inFlight('export', -1);
      const seconds = (performance.now() - started) / 1000;
      const failed = failure !== undefined || !stream.readableEnded;
      metrics.operation(
        'export',
        compress,
        failed ? 'failure' : 'success',
        seconds,
        failed ? errorCode(failure) : undefined,
      );
    });
  }

  private async importArchive(
    input: Readable,
    migration: MigrationMark | undefined,
    verify: ((manifest: Manifest) => void) | undefined,
    level: ImportedLevel,
  ): Promise<Checkpoint> {
    const { store, catalog, codec, clock } = this.deps;
    const id = newId(clock.now());
    const room = await (this.deps.guard ?? new DiskGuard(store)).room();
    let parent: { checkpoint: Checkpoint; release: () => void } | undefined;
    try {
      return await publishCheckpoint({ store, catalog }, id, {
        fill: async (dir) => {
          const nameFree = (m: Manifest) => {
            if (catalog.findByName(m.container.id, m.checkpoint.name))
              throw new CheckpointNameInUseError(m.container.name, m.checkpoint.name);
          };
          // A level's is cryo's; anything else may be Podman's (a plain import, an image's layer, a migration from Podman).
          const foreign = !level.parent && !level.layer && this.deps.foreign !== undefined;
          const extracted = await codec.extract(input, dir, {
            maxBytes: this.deps.maxImportBytes,
            foreign,
            onManifest: (m) => {
              nameFree(m);
              // A level of a chain: its parent must be here, and stays until the level is published.
              if (m.checkpoint.parent) {
                const found = this.parentOf(m, level.parent);
                parent = { checkpoint: found, release: this.deps.checkpoints.retain(found.id).release };
              } else if (level.parent) {
                throw new ArchiveInvalidError(
                  'the archive is a full checkpoint, not a level above the one given',
                  'the registry artifact lists its levels base first',
                );
              }
              // The archive announces every entry's size in cryo.json, before any of them is written.
              requireRoom(
                room,
                'import',
                m.entries.reduce((sum, e) => sum + e.size, 0),
              );
            },
          });
          const manifest = extracted ?? (await this.adoptPodman(dir, id));
          if (!extracted) {
            nameFree(manifest);
            // Podman's archive lists no sizes first: its floor is checked once it is here.
            requireRoom(await (this.deps.guard ?? new DiskGuard(store)).room(), 'import', 0);
          }
          requireRestorable(manifest);
          verify?.(manifest);
          const chain = parent ? await this.attach(id, dir, parent.checkpoint) : undefined;
          return { manifest, chain };
        },
        describe: ({ manifest, chain }, sizeBytes) => ({
          id,
          name: manifest.checkpoint.name,
          kind: 'container',
          container: { ...manifest.container, image: manifest.image.ref },
          createdAt: manifest.createdAt,
          leaveRunning: manifest.checkpoint.leaveRunning,
          ...(manifest.checkpoint.processImage === false ? { processImage: false } : {}),
          ...(manifest.checkpoint.lazyPages ? { lazyPages: true } : {}),
          ...(manifest.checkpoint.diskPreCopy ? { diskPreCopy: manifest.checkpoint.diskPreCopy } : {}),
          ...(manifest.checkpoint.application ? { application: manifest.checkpoint.application } : {}),
          ...(migration ? { migration } : {}),
          ...(chain ? { chain } : {}),
          ...(level.layer ? { layer: level.layer } : {}),
          sizeBytes,
          stats: { dumpMs: manifest.checkpoint.dumpMs, totalMs: manifest.checkpoint.dumpMs },
          status: 'complete',
        }),
      });
    } finally {
      parent?.release();
    }
  }

  /** The checkpoint an imported level names as its parent: the one given, or one here of that name and time. */
  private parentOf(manifest: Manifest, given: Checkpoint | undefined): Checkpoint {
    const wanted = manifest.checkpoint.parent!;
    const found = given ?? this.deps.catalog.findByName(manifest.container.id, wanted.name);
    if (!found || found.createdAt !== wanted.createdAt)
      throw new ArchiveInvalidError(
        `the archive is an incremental checkpoint, and its parent "${wanted.name}" (${wanted.createdAt}) is not ${given ? 'the level below it' : 'here'}`,
        given
          ? 'the registry artifact lists its levels base first, each building on the one before'
          : 'export it again (an export of an incremental checkpoint is flattened), or pull it from a registry',
      );
    return found;
  }

  /** An imported level's images link to its parent's; the files equal to the parent's are shared with it. */
  private async attach(id: string, dir: string, parent: Checkpoint): Promise<CheckpointChain> {
    const { chain, store } = this.deps;
    if (!chain) throw new Error('incremental imports are not wired: no image chain');
    const level = await recordChain({ chain, store, id, parent }, dir, 'attach');
    return { ...level.chain, ownBytes: await level.own() };
  }
}

/** What Podman cannot restore of a Docker checkpoint yet, refused before a byte is written. */
async function requirePortableToPodman(dir: string): Promise<void> {
  const manifest = await readManifest(dir);
  const docker = JSON.parse(await readFile(path.join(dir, DOCKER_CONFIG), 'utf8')) as unknown;
  const why = notPortableToPodman(manifest, docker);
  if (why) throw new CrossEngineUnsupportedError(why.what, why.hint);
}

/** Passes `size` bytes through and fails on any other count (pipeline then ends the source with it). */
function exactly(size: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > size) cb(new Error(`the archive ran past the ${size} bytes announced`));
      else cb(null, chunk);
    },
    flush(cb) {
      cb(seen === size ? null : new Error(`the archive ended at ${seen} of the ${size} bytes announced`));
    },
  });
}

function requireRestorable(manifest: Manifest): void {
  const names = [...new Set(manifest.entries.map((e) => e.name))];
  const { application, processImage } = manifest.checkpoint;
  const needed = [
    DOCKER_CONFIG,
    ...(processImage === false ? [] : [`${CHECKPOINT_IMAGES_DIR}/${CRIU_INVENTORY}`]),
    ...(application
      ? [`${OPERATORS_DIR}/${operatorCheckpointDir(application.checkpointId)}/${OPERATORS_METADATA}`]
      : []),
  ];
  for (const need of needed) {
    if (!names.includes(need)) {
      throw new ArchiveInvalidError(
        `the archive has no ${need}`,
        'it is not a container checkpoint made by cryo',
      );
    }
  }
}
