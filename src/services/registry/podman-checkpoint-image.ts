import {
  CHECKPOINT_RUNTIME,
  OCI_ARCHITECTURES,
  PodmanCheckpointAnnotation,
} from '../../domain/cross-engine.js';
import path from 'node:path';
import type { Manifest } from '../../domain/manifest.js';
import { compareVersions } from '../../domain/host-fit.js';
import { OciAnnotation, OciMediaType, type OciManifest } from '../../domain/oci-artifact.js';
import { digestOf } from '../support/digest.js';

/** The layer types of Podman's checkpoint images: the archive, plain or compressed (the import detects which). */
const PODMAN_LAYER_TYPES: string[] = [
  OciMediaType.IMAGE_LAYER,
  `${OciMediaType.IMAGE_LAYER}+gzip`,
  `${OciMediaType.IMAGE_LAYER}+zstd`,
];

/**
 * A Podman checkpoint image (`podman container checkpoint --create-image`'s format) of a checkpoint whose
 * `--format podman` archive is `layer`: a plain OCI image config naming that one layer, and the manifest with
 * Podman's and CRI-O's annotations (`podman container restore IMAGE` requires the runtime's).
 */
export function podmanCheckpointImage(
  manifest: Manifest,
  createdAt: string,
  layer: { digest: string; size: number },
): { config: Buffer; manifest: OciManifest } {
  const arch = OCI_ARCHITECTURES[manifest.source.arch] ?? manifest.source.arch;
  const config = Buffer.from(
    JSON.stringify({
      created: createdAt,
      architecture: arch,
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
      config: {},
    }),
  );
  const name = manifest.container.name;
  return {
    config,
    manifest: {
      schemaVersion: 2,
      mediaType: OciMediaType.MANIFEST,
      config: { mediaType: OciMediaType.IMAGE_CONFIG, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: OciMediaType.IMAGE_LAYER, ...layer }],
      annotations: {
        [OciAnnotation.CREATED]: createdAt,
        [PodmanCheckpointAnnotation.NAME]: name,
        [PodmanCheckpointAnnotation.CRIO_NAME]: name,
        [PodmanCheckpointAnnotation.RAW_IMAGE_NAME]: manifest.image.ref,
        [PodmanCheckpointAnnotation.ROOTFS_IMAGE_NAME]: manifest.image.ref,
        [PodmanCheckpointAnnotation.ROOTFS_IMAGE_ID]: manifest.image.id.replace(/^sha256:/, ''),
        [PodmanCheckpointAnnotation.CRIU_VERSION]: manifest.source.criuVersion,
        [PodmanCheckpointAnnotation.RUNTIME_NAME]: CHECKPOINT_RUNTIME,
        [PodmanCheckpointAnnotation.HOST_ARCH]: arch,
        [PodmanCheckpointAnnotation.HOST_KERNEL]: manifest.source.kernel,
      },
    },
  };
}

/** Podman's checkpoint image: a plain OCI image (no artifact type) that Podman's annotations name a checkpoint. */
export function isPodmanCheckpointImage(manifest: OciManifest): boolean {
  return (
    manifest.artifactType === undefined &&
    manifest.config.mediaType === OciMediaType.IMAGE_CONFIG &&
    manifest.annotations?.[PodmanCheckpointAnnotation.NAME] !== undefined
  );
}

/** Why a Podman checkpoint image's layers cannot be its archive, or undefined. */
export function podmanLayerProblem(manifest: OciManifest): string | undefined {
  const [layer, ...more] = manifest.layers;
  if (!layer || more.length > 0)
    return `a Podman checkpoint image has one layer, not ${manifest.layers.length}`;
  if (!PODMAN_LAYER_TYPES.includes(layer.mediaType)) return `its layer is of type ${layer.mediaType}`;
  return undefined;
}

/**
 * Why this host cannot restore a Podman checkpoint image, from its annotations, or undefined: another architecture,
 * a newer CRIU than this host's, or another OCI runtime than runc (cryo restores with runc). An annotation that is
 * absent says nothing.
 */
export function podmanImageMismatch(
  manifest: OciManifest,
  host: { arch: string; criuVersion: string },
): { message: string; hint: string } | undefined {
  const a = manifest.annotations ?? {};
  const arch = a[PodmanCheckpointAnnotation.HOST_ARCH];
  const here = OCI_ARCHITECTURES[host.arch] ?? host.arch;
  if (arch !== undefined && arch !== here)
    return {
      message: `the checkpoint image was dumped on ${arch}, this host is ${here}`,
      hint: 'restore it on a host of the same architecture',
    };
  const criu = a[PodmanCheckpointAnnotation.CRIU_VERSION];
  if (criu !== undefined && compareVersions(host.criuVersion, criuVersion(criu)) < 0)
    return {
      message: `the checkpoint image was dumped by CRIU ${criuVersion(criu)}, this host has CRIU ${host.criuVersion}`,
      hint: `install CRIU >= ${criuVersion(criu)} here (native-scripts/install-criu.sh)`,
    };
  const runtime = a[PodmanCheckpointAnnotation.RUNTIME_NAME];
  if (runtime !== undefined && path.basename(runtime) !== CHECKPOINT_RUNTIME)
    return {
      message: `the checkpoint image was dumped by the ${runtime} runtime; cryo restores with ${CHECKPOINT_RUNTIME}`,
      hint: `restore it with podman on a host with ${runtime}`,
    };
  return undefined;
}

/** Podman writes CRIU's version as go-criu gives it, major*10000+minor*100+sublevel (40201: 4.2.1); cryo, dotted. */
function criuVersion(annotation: string): string {
  if (!/^\d{5,}$/.test(annotation)) return annotation;
  const n = Number(annotation);
  return `${Math.floor(n / 10000)}.${Math.floor(n / 100) % 100}.${n % 100}`;
}
