/** Base of every error cryo reports to a client: a stable `code`, an HTTP status and an optional hint. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    readonly hint?: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, hint?: string, details?: unknown) {
    super('VALIDATION_FAILED', 400, message, hint, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'a valid bearer token is required') {
    super(
      'UNAUTHORIZED',
      401,
      message,
      'send "Authorization: Bearer <token>"; the token is CRYO_TOKEN or <data dir>/token',
    );
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(received: string, accepted: readonly string[]) {
    super(
      'UNSUPPORTED_MEDIA_TYPE',
      415,
      `this route does not take ${received === '' ? 'a body without a content-type' : `content-type ${received}`}`,
      `send the body as a stream with content-type ${accepted.join(' or ')}`,
      { accepted },
    );
  }
}

export class ImageInvalidError extends AppError {
  constructor(reason: string) {
    super(
      'IMAGE_INVALID',
      400,
      `the body is not an image archive that Docker can load: ${reason}`,
      'send the output of "docker save IMAGE" (a tar, optionally compressed)',
    );
  }
}

export class RouteNotFoundError extends AppError {
  constructor(method: string, url: string) {
    super(
      'ROUTE_NOT_FOUND',
      404,
      `no route ${method} ${url}`,
      'the API is described at /openapi.json and /docs',
    );
  }
}

export class ContainerNotFoundError extends AppError {
  constructor(ref: string, hint = 'give a container id, a unique id prefix or a name (docker ps -a)') {
    super('CONTAINER_NOT_FOUND', 404, `no container matches "${ref}"`, hint);
  }
}

export class ContainerNotRunningError extends AppError {
  constructor(ref: string, state: string) {
    super(
      'CONTAINER_NOT_RUNNING',
      409,
      `container "${ref}" is ${state}, not running`,
      'only a running, unpaused container can be checkpointed; start or unpause it first',
    );
  }
}

export class ContainerRunningError extends AppError {
  constructor(ref: string) {
    super(
      'CONTAINER_RUNNING',
      409,
      `container "${ref}" is running`,
      'stop it first (docker stop), or restore into a new container by giving "name"',
    );
  }
}

export class ContainerNameInUseError extends AppError {
  constructor(name: string) {
    super(
      'CONTAINER_NAME_IN_USE',
      409,
      `a container named "${name}" already exists`,
      'choose another name, or remove that container first',
    );
  }
}

export class CheckpointNotFoundError extends AppError {
  constructor(id: string) {
    super(
      'CHECKPOINT_NOT_FOUND',
      404,
      `no checkpoint with id "${id}"`,
      'list checkpoints with GET /v1/checkpoints',
    );
  }
}

export class CheckpointNameInUseError extends AppError {
  constructor(container: string, name: string) {
    super(
      'CHECKPOINT_NAME_IN_USE',
      409,
      `container "${container}" already has a checkpoint named "${name}"`,
      'choose another name, or delete the old checkpoint first',
    );
  }
}

export class OperationInProgressError extends AppError {
  constructor(subject: string, operation: string) {
    super(
      'CHECKPOINT_IN_PROGRESS',
      409,
      `${subject} is busy: a ${operation} is in progress`,
      'only one checkpoint or restore runs per container at a time; retry when it has finished',
    );
  }
}

export class DockerUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      'DOCKER_UNAVAILABLE',
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
      'DOCKER_NOT_EXPERIMENTAL',
      503,
      'dockerd runs without experimental features, so its checkpoint API is off',
      'set {"experimental": true} in /etc/docker/daemon.json and restart dockerd (native-scripts/docker-experimental.sh)',
    );
  }
}

export class DockerError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DOCKER_FAILED', 500, message, 'see the dockerd log for details', undefined, options);
  }
}

export class CriuUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      'CRIU_UNAVAILABLE',
      503,
      message,
      'install CRIU >= 4.2 as criu on PATH (native-scripts/install-criu.sh) and check that "criu check" passes',
      undefined,
      options,
    );
  }
}

/** CRIU failed; carries the tail of CRIU's own log, which says why. */
export class CriuError extends AppError {
  constructor(
    message: string,
    readonly logTail: string[],
    readonly logPath?: string,
    options?: { cause?: unknown },
  ) {
    super(
      'CRIU_FAILED',
      500,
      message,
      logTail.length > 0
        ? 'the last lines of the CRIU log are in details.logTail'
        : 'CRIU left no log; run "criu check" on the host',
      { logTail, logPath },
      options,
    );
  }
}

export class ArchiveInvalidError extends AppError {
  constructor(message: string, hint: string, statusCode = 400) {
    super('ARCHIVE_INVALID', statusCode, message, hint);
  }
}

export class ImageNotFoundError extends AppError {
  constructor(ref: string, id: string) {
    super(
      'IMAGE_NOT_FOUND',
      404,
      `the checkpoint needs image ${ref} (${id}), which this host does not have`,
      `load the image ${ref} on this host first (docker pull ${ref}, or docker save ${ref} | docker load)`,
    );
  }
}

export class HostMismatchError extends AppError {
  constructor(message: string, hint: string) {
    super('HOST_MISMATCH', 409, message, hint);
  }
}

export class CheckpointNotExportableError extends AppError {
  constructor(id: string) {
    super(
      'CHECKPOINT_NOT_EXPORTABLE',
      409,
      `checkpoint "${id}" is of a process tree, which restores only on the host that dumped it`,
      'archives carry container checkpoints: checkpoint the container instead',
    );
  }
}

export class CheckpointInUseError extends AppError {
  constructor(id: string) {
    super(
      'CHECKPOINT_IN_USE',
      409,
      `checkpoint "${id}" is being restored or exported`,
      'retry when that has finished',
    );
  }
}

export class RootfsUnsupportedError extends AppError {
  constructor(driver: string) {
    super(
      'ROOTFS_DIFF_UNSUPPORTED',
      501,
      `cannot record root-filesystem changes on storage driver "${driver}"`,
      'cryo records root-filesystem changes with the overlay2 storage driver',
    );
  }
}

export class InvalidCronError extends AppError {
  constructor(expression: string, reason: string) {
    super(
      'INVALID_CRON',
      400,
      `invalid cron expression "${expression}": ${reason}`,
      'use 5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, @daily, @weekly, @monthly',
    );
  }
}

export class ScheduleNotFoundError extends AppError {
  constructor(id: string) {
    super('SCHEDULE_NOT_FOUND', 404, `no schedule with id "${id}"`, 'list schedules with GET /v1/schedules');
  }
}

export class ScheduleRunInProgressError extends AppError {
  constructor(id: string) {
    super(
      'SCHEDULE_RUN_IN_PROGRESS',
      409,
      `schedule "${id}" is taking a snapshot right now`,
      'retry when that run has finished',
    );
  }
}

export class TargetError extends AppError {
  constructor(
    code: 'TARGET_UNREACHABLE' | 'TARGET_UNAUTHORIZED' | 'TARGET_REFUSED',
    message: string,
    hint: string,
  ) {
    super(code, code === 'TARGET_UNAUTHORIZED' ? 400 : 502, message, hint);
  }
}

export class MigrationInProgressError extends AppError {
  constructor(container: string, id: string) {
    super(
      'MIGRATION_IN_PROGRESS',
      409,
      `container "${container}" is already being migrated (${id})`,
      `follow it with GET /v1/migrations/${id}`,
    );
  }
}

export class MigrationNotFoundError extends AppError {
  constructor(id: string) {
    super(
      'MIGRATION_NOT_FOUND',
      404,
      `no migration with id "${id}"`,
      'list migrations with GET /v1/migrations',
    );
  }
}

export class InsufficientSpaceError extends AppError {
  constructor(needed: number, free: number) {
    super(
      'TARGET_NO_SPACE',
      507,
      `the target has ${free} bytes free, the checkpoint needs about ${needed}`,
      "free space in the target's data directory",
    );
  }
}

export class ProcessNotFoundError extends AppError {
  constructor(pid: number) {
    super(
      'PROCESS_NOT_FOUND',
      404,
      `no process with pid ${pid}`,
      'give the pid of a running process (ps -e)',
    );
  }
}

export class ProcessRefusedError extends AppError {
  constructor(pid: number, reason: string) {
    super(
      'PROCESS_REFUSED',
      400,
      `pid ${pid} cannot be checkpointed: ${reason}`,
      'give the pid of a workload process tree',
    );
  }
}

export class ProcessRunningError extends AppError {
  constructor(pid: number) {
    super(
      'PROCESS_RUNNING',
      409,
      `pid ${pid} of the checkpoint still runs`,
      'CRIU restores the tree under its own pids: stop the original process first',
    );
  }
}

export class PreflightFailedError extends AppError {
  constructor(problems: { code: string; message: string }[]) {
    super(
      'PREFLIGHT_FAILED',
      409,
      `a dump would fail: ${problems.map((p) => p.code).join(', ')}`,
      'see details.problems for each reason and its fix, or pass force: true to try anyway',
      { problems },
    );
  }
}

export class SidecarUnavailableError extends AppError {
  constructor(detail: string) {
    super(
      'SIDECAR_UNAVAILABLE',
      409,
      `no cryo sidecar answers: ${detail}`,
      "the container's job must use cryo's sidecar SDK (cryo/sidecar), which listens on /run/cryo/sidecar.sock",
    );
  }
}

export class CheckpointTriggerRefusedError extends AppError {
  constructor(reason: string, message: string) {
    super(
      'APPLICATION_CHECKPOINT_REFUSED',
      409,
      message,
      reason === 'MIN_PAUSE'
        ? 'wait for the minimum pause between checkpoints, then retry'
        : reason === 'TOO_MANY_FAILURES'
          ? "checkpoints of this job keep failing; see cryo's log and the job's output"
          : 'retry when the checkpoint in progress has ended',
      { reason },
    );
  }
}

export class ApplicationCheckpointFailedError extends AppError {
  constructor(reason: string, message: string) {
    super(
      'APPLICATION_CHECKPOINT_FAILED',
      502,
      `the job's operator checkpoint failed (${reason}): ${message}`,
      reason === 'EXPIRED'
        ? 'some subtask did not ack in time; the job may be overloaded or stuck'
        : "see the job's output for why a subtask declined",
      { reason },
    );
  }
}

export class ApplicationRestoreFailedError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      'APPLICATION_RESTORE_FAILED',
      502,
      `the job's operator state could not be restored: ${message}`,
      "see the job's output; the checkpoint is kept",
      undefined,
      options,
    );
  }
}

export class RestoreAbandonedError extends AppError {
  constructor(name: string) {
    super(
      'RESTORE_ABANDONED',
      409,
      `the caller went away before the restore of "${name}" was answered; the new container was removed`,
      'restore again; with abandonOnDisconnect, stay connected until the answer',
    );
  }
}

export class RestoreModeUnavailableError extends AppError {
  constructor(id: string, mode: 'process' | 'application') {
    super(
      mode === 'process' ? 'NO_PROCESS_IMAGE' : 'NO_APPLICATION_STATE',
      409,
      mode === 'process'
        ? `checkpoint "${id}" holds no CRIU image (it was taken with application: "only")`
        : `checkpoint "${id}" holds no operator state (it was taken without application)`,
      mode === 'process' ? 'restore it with mode "application"' : 'restore it with mode "process"',
    );
  }
}
