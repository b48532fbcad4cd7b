/** runc's annotation naming the CRIU configuration file for a container's checkpoint and restore. */
export const CRIU_CONFIG_ANNOTATION = 'org.criu.config';

/**
 * The CRIU configuration a checkpoint names for the runc of another engine (Podman): the compat mount engine,
 * because CRIU 4's default one cannot copy a Docker root's sharing onto Podman's private storage ("Failed to copy
 * sharing from ... criu-root"), and no check of the root directory's mode, which differs between the engines'
 * unpacked images (0755 against 0555). native-scripts/setup-host.sh writes it.
 */
export const CROSS_ENGINE_CRIU_CONFIG = '/etc/criu/cryo-cross-engine.conf';
export const CROSS_ENGINE_CRIU_OPTIONS = ['mntns-compat-mode', 'skip-file-rwx-check'] as const;

/**
 * The manifest annotations of a Podman checkpoint image (libpod/define/annotations.go); Podman's restore from an
 * image requires RUNTIME_NAME to be its own runtime's name. CRI-O requires CRIO_NAME to restore one in Kubernetes.
 */
export const PodmanCheckpointAnnotation = {
  NAME: 'io.podman.annotations.checkpoint.name',
  RAW_IMAGE_NAME: 'io.podman.annotations.checkpoint.rawImageName',
  ROOTFS_IMAGE_ID: 'io.podman.annotations.checkpoint.rootfsImageID',
  ROOTFS_IMAGE_NAME: 'io.podman.annotations.checkpoint.rootfsImageName',
  CRIU_VERSION: 'io.podman.annotations.checkpoint.criu.version',
  RUNTIME_NAME: 'io.podman.annotations.checkpoint.runtime.name',
  HOST_ARCH: 'io.podman.annotations.checkpoint.host.arch',
  HOST_KERNEL: 'io.podman.annotations.checkpoint.host.kernel',
  CRIO_NAME: 'io.kubernetes.cri-o.annotations.checkpoint.name',
} as const;

/** The runtime a Podman checkpoint image names: cryo dumps with runc. */
export const CHECKPOINT_RUNTIME = 'runc';

/** uname -m's names as OCI image configs name architectures. */
export const OCI_ARCHITECTURES: Record<string, string> = {
  x86_64: 'amd64',
  aarch64: 'arm64',
  armv7l: 'arm',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};
