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
