import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class ContainerNotFoundError extends AppError {
  constructor(ref: string, hint = 'give a container id, a unique id prefix or a name (docker ps -a)') {
    super(ErrorCode.CONTAINER_NOT_FOUND, 404, `no container matches "${ref}"`, hint);
  }
}

export class ContainerNotRunningError extends AppError {
  constructor(ref: string, state: string) {
    super(
      ErrorCode.CONTAINER_NOT_RUNNING,
      409,
      `container "${ref}" is ${state}, not running`,
      'only a running, unpaused container can be checkpointed; start or unpause it first',
    );
  }
}

export class ContainerRunningError extends AppError {
  constructor(ref: string) {
    super(
      ErrorCode.CONTAINER_RUNNING,
      409,
      `container "${ref}" is running`,
      'stop it first (docker stop), or restore into a new container by giving "name"',
    );
  }
}

export class ContainerNameInUseError extends AppError {
  constructor(name: string) {
    super(
      ErrorCode.CONTAINER_NAME_IN_USE,
      409,
      `a container named "${name}" already exists`,
      'choose another name, or remove that container first',
    );
  }
}

export class DockerUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.DOCKER_UNAVAILABLE,
      503,
      `dockerd does not answer: ${message}`,
      'start dockerd (native-scripts/start-dockerd.sh) or set DOCKER_HOST',
      undefined,
      options,
    );
  }
}

export class DockerNotExperimentalError extends AppError {
  constructor() {
    super(
      ErrorCode.DOCKER_NOT_EXPERIMENTAL,
      503,
      'dockerd runs without experimental features, so its checkpoint API is off',
      'set {"experimental": true} in /etc/docker/daemon.json and restart dockerd (native-scripts/setup-host.sh)',
    );
  }
}

export class DockerError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.DOCKER_FAILED, 500, message, 'see the dockerd log for details', undefined, options);
  }
}

export class ImageNotFoundError extends AppError {
  constructor(ref: string, id: string) {
    super(
      ErrorCode.IMAGE_NOT_FOUND,
      404,
      `the checkpoint needs image ${ref} (${id}), which this host does not have`,
      `load the image ${ref} on this host first (docker pull ${ref}, or docker save ${ref} | docker load)`,
    );
  }
}

export class ImageInvalidError extends AppError {
  constructor(reason: string) {
    super(
      ErrorCode.IMAGE_INVALID,
      400,
      `the body is not an image archive that Docker can load: ${reason}`,
      'send the output of "docker save IMAGE" (a tar, optionally compressed)',
    );
  }
}

export class RootfsUnsupportedError extends AppError {
  constructor(driver: string) {
    super(
      ErrorCode.ROOTFS_DIFF_UNSUPPORTED,
      501,
      `cannot record root-filesystem changes on storage driver "${driver}"`,
      'cryo records root-filesystem changes with the overlay2 storage driver',
    );
  }
}

export class RestorePathUnavailableError extends AppError {
  constructor(container: string, reason: string) {
    super(
      ErrorCode.RESTORE_PATH_UNAVAILABLE,
      409,
      `container "${container}" cannot be restored on this host: ${reason}`,
      "register cryo's OCI runtime with dockerd (native-scripts/setup-host.sh), through which every restore works",
    );
  }
}
