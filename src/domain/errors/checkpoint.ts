import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class CheckpointNotFoundError extends AppError {
  constructor(id: string) {
    super(
      ErrorCode.CHECKPOINT_NOT_FOUND,
      404,
      `no checkpoint with id "${id}"`,
      'list checkpoints with GET /v1/checkpoints',
    );
  }
}

export class CheckpointNameInUseError extends AppError {
  constructor(container: string, name: string) {
    super(
      ErrorCode.CHECKPOINT_NAME_IN_USE,
      409,
      `container "${container}" already has a checkpoint named "${name}"`,
      'choose another name, or delete the old checkpoint first',
    );
  }
}

/** Another operation holds the container or checkpoint; the code names the one in progress. */
export class OperationInProgressError extends AppError {
  constructor(subject: string, operation: string) {
    super(
      operation === 'restore' ? ErrorCode.RESTORE_IN_PROGRESS : ErrorCode.CHECKPOINT_IN_PROGRESS,
      409,
      `${subject} is busy: a ${operation} is in progress`,
      'only one checkpoint or restore runs per container at a time; retry when it has finished',
    );
  }
}

export class ArchiveInvalidError extends AppError {
  constructor(message: string, hint: string, statusCode = 400) {
    super(ErrorCode.ARCHIVE_INVALID, statusCode, message, hint);
  }
}

export class CheckpointNotExportableError extends AppError {
  constructor(id: string) {
    super(
      ErrorCode.CHECKPOINT_NOT_EXPORTABLE,
      409,
      `checkpoint "${id}" is of a process tree, which restores only on the host that dumped it`,
      'archives carry container checkpoints: checkpoint the container instead',
    );
  }
}

export class CheckpointInUseError extends AppError {
  constructor(id: string) {
    super(
      ErrorCode.CHECKPOINT_IN_USE,
      409,
      `checkpoint "${id}" is being restored or exported`,
      'retry when that has finished',
    );
  }
}

export class RestoreAbandonedError extends AppError {
  constructor(name: string) {
    super(
      ErrorCode.RESTORE_ABANDONED,
      409,
      `the caller went away before the restore of "${name}" was answered; the new container was removed`,
      'restore again; with abandonOnDisconnect, stay connected until the answer',
    );
  }
}

export class RestoreModeUnavailableError extends AppError {
  constructor(id: string, mode: 'process' | 'application') {
    super(
      mode === 'process' ? ErrorCode.NO_PROCESS_IMAGE : ErrorCode.NO_APPLICATION_STATE,
      409,
      mode === 'process'
        ? `checkpoint "${id}" holds no CRIU image (it was taken with application: "only")`
        : `checkpoint "${id}" holds no operator state (it was taken without application)`,
      mode === 'process' ? 'restore it with mode "application"' : 'restore it with mode "process"',
    );
  }
}

/** An operation that would leave the data directory with less free space than it needs, or than the floor. */
export class DiskSpaceError extends AppError {
  constructor(what: string, needed: number, free: number, floor: number) {
    super(
      ErrorCode.INSUFFICIENT_SPACE,
      507,
      `cryo's data directory has ${free} bytes free; the ${what} needs about ${needed}` +
        (floor > 0 ? `, and ${floor} must stay free (CRYO_MIN_FREE_BYTES, CRYO_MIN_FREE_PERCENT)` : ''),
      "free space in cryo's data directory (CRYO_DATA_DIR), or delete checkpoints; nothing was frozen or written",
      { neededBytes: needed, freeBytes: free, floorBytes: floor },
    );
  }
}

/** A post-copy migration's checkpoint: its memory pages were served from the source's frozen tasks, not stored. */
export class PagesNotInCheckpointError extends AppError {
  constructor(id: string) {
    super(
      ErrorCode.PAGES_NOT_IN_CHECKPOINT,
      409,
      `checkpoint "${id}" holds no memory pages: a post-copy migration served them from the source`,
      'only the migration that made it restores it, with {"lazyPages": {"address", "port"}} of its page server',
    );
  }
}

/** A checkpoint that holds only one part of a disk pre-copy: the seed (no process), or the changes since it. */
export class PreCopyPartError extends AppError {
  constructor(id: string, part: 'seed' | 'changes', detail?: string) {
    super(
      ErrorCode.PRE_COPY_PART,
      409,
      part === 'seed'
        ? `checkpoint "${id}" is a migration's disk pre-copy: it holds files, no process`
        : `checkpoint "${id}" holds only the disk changes since its migration's pre-copy${detail ? `: ${detail}` : ''}`,
      part === 'seed'
        ? 'a migration prepares a container from it (POST /v1/checkpoints/{id}/prepare), then restores its changes checkpoint into that container'
        : 'restore it in place, or into the container prepared from its seed with {"prepared": "<container id>"}',
    );
  }
}

/** An incremental checkpoint asked to build on a checkpoint it cannot build on. */
export class ChainParentInvalidError extends AppError {
  constructor(parent: string, reason: string) {
    super(
      ErrorCode.CHAIN_PARENT_INVALID,
      409,
      `checkpoint "${parent}" cannot be the parent of an incremental checkpoint: ${reason}`,
      'name a complete checkpoint of the same container that holds its memory pages, or leave "parent" out',
    );
  }
}

/** An incremental checkpoint whose parents' images are not all there (a chain that loops or ends early). */
export class ChainBrokenError extends AppError {
  constructor(id: string, detail: string) {
    super(
      ErrorCode.CHAIN_BROKEN,
      409,
      `checkpoint "${id}" builds on images that are not all there: ${detail}`,
      'restore a full checkpoint, or pull the chain again from the registry it was pushed to',
    );
  }
}
