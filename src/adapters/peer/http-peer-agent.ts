import { Readable } from 'node:stream';
import { DEADLINES } from '../../defaults.js';
import { ApiError } from '../../api-client/api-error.js';
import { apiPaths } from '../../api-client/api-paths.js';
import { ApiTransport, type ApiRequest } from '../../api-client/api-transport.js';
import {
  CheckpointListSchema,
  CheckpointSchema,
  PreparedContainerSchema,
  RestoredContainerListSchema,
  RestoreResultSchema,
  type Checkpoint,
  type PreparedContainer,
  type RestoredContainer,
  type RestoreResult,
} from '../../domain/checkpoint.js';
import { ErrorCode, TargetError } from '../../domain/errors/index.js';
import { HostInfoSchema, type HostInfoReport } from '../../domain/migration.js';
import type { CheckpointRemoval, PeerAgent, PeerRestoreOptions } from '../../services/ports/peer-agent.js';
import type { ImageIdentity } from '../../domain/manifest.js';

/** A restore on the target that takes longer than this counts as failed, and the migration rolls back. */
const RESTORE_TIMEOUT_MS = 5 * 60_000;
/** Filling a prepared container copies the whole seed (a volume may hold gigabytes). */
const PREPARE_TIMEOUT_MS = 30 * 60_000;

/** A cryo agent reached over its REST API; request bodies stream (no archive is buffered). */
export class HttpPeerAgent implements PeerAgent {
  private readonly transport: ApiTransport;

  constructor(
    readonly url: string,
    token: string,
    timeoutMs = 30_000,
    /** How long an archive's or an image's stream may stand still, either way, before the transfer fails. */
    private readonly streamIdleMs: number = DEADLINES.peerStream.ms,
  ) {
    this.transport = new ApiTransport(url, token, timeoutMs);
  }

  async host(): Promise<HostInfoReport> {
    return HostInfoSchema.parse(await this.call('GET', apiPaths.host));
  }

  async hasImage(image: ImageIdentity): Promise<boolean> {
    const body = (await this.call('GET', apiPaths.imagePresent(image))) as { present?: unknown } | null;
    return body?.present === true;
  }

  async loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    await this.call('POST', apiPaths.images, {
      stream: tar,
      contentType: 'application/x-tar',
      timeoutMs: 0,
      idleTimeoutMs: this.streamIdleMs,
    });
  }

  async importArchive(archive: Readable, migrationId: string): Promise<Checkpoint> {
    return CheckpointSchema.parse(
      await this.call('POST', apiPaths.migrationImport(migrationId), {
        stream: archive,
        contentType: 'application/x-tar',
        timeoutMs: 0,
        idleTimeoutMs: this.streamIdleMs,
      }),
    );
  }

  async restore(
    checkpointId: string,
    name: string,
    { lazyPages, prepared }: PeerRestoreOptions = {},
  ): Promise<RestoreResult> {
    // Should this request time out or its connection drop, the source rolls back: the target must not keep a copy.
    const body = Readable.from([
      JSON.stringify({
        name,
        ports: 'same',
        abandonOnDisconnect: true,
        ...(lazyPages ? { lazyPages } : {}),
        ...(prepared ? { prepared } : {}),
      }),
    ]);
    return RestoreResultSchema.parse(
      await this.call('POST', apiPaths.restore(checkpointId), {
        stream: body,
        contentType: 'application/json',
        timeoutMs: RESTORE_TIMEOUT_MS,
      }),
    );
  }

  async prepare(seedCheckpointId: string, name: string): Promise<PreparedContainer> {
    return PreparedContainerSchema.parse(
      await this.call('POST', apiPaths.prepare(seedCheckpointId), {
        json: { name, ports: 'same' },
        timeoutMs: PREPARE_TIMEOUT_MS,
      }),
    );
  }

  async deleteCheckpoint(checkpointId: string): Promise<CheckpointRemoval> {
    const path = apiPaths.checkpoint(checkpointId);
    try {
      await this.transport.call('DELETE', path);
      return 'deleted';
    } catch (err) {
      if (err instanceof ApiError && err.code === ErrorCode.CHECKPOINT_NOT_FOUND) return 'absent';
      if (err instanceof ApiError && err.code === ErrorCode.CHECKPOINT_IN_USE) return 'in-use';
      throw this.targetError('DELETE', path, err);
    }
  }

  async findCheckpoint(name: string): Promise<Checkpoint | undefined> {
    return CheckpointListSchema.parse(await this.call('GET', apiPaths.checkpointsNamed(name))).checkpoints[0];
  }

  async restoredContainers(checkpointId: string): Promise<RestoredContainer[]> {
    return RestoredContainerListSchema.parse(await this.call('GET', apiPaths.restoredFrom(checkpointId)))
      .containers;
  }

  /** The target's answer; its errors become TARGET_UNREACHABLE, TARGET_UNAUTHORIZED or TARGET_REFUSED. */
  private async call(method: string, path: string, request: ApiRequest = {}): Promise<unknown> {
    try {
      return await this.transport.call(method, path, request);
    } catch (err) {
      throw this.targetError(method, path, err);
    }
  }

  private targetError(method: string, path: string, err: unknown): TargetError {
    if (!(err instanceof ApiError)) {
      // A 2xx whose body is not JSON: the target is not a cryo that this one understands.
      return new TargetError(
        ErrorCode.TARGET_REFUSED,
        `the target ${this.url} answered ${method} ${path} with a body that is not JSON`,
        'check that the target URL points at a cryo agent',
      );
    }
    if (err.kind === 'unreachable') {
      return new TargetError(
        ErrorCode.TARGET_UNREACHABLE,
        `cannot reach the target ${this.url}: ${err.code}`,
        'check the target URL and that cryo runs and listens there (CRYO_LISTEN)',
      );
    }
    if (err.status === 401) {
      return new TargetError(
        ErrorCode.TARGET_UNAUTHORIZED,
        `the target ${this.url} refused the token`,
        "give the target's token (its CRYO_TOKEN or <data dir>/token) as targetToken",
      );
    }
    return new TargetError(
      ErrorCode.TARGET_REFUSED,
      `the target ${this.url} answered ${method} ${path} with ${err.code}: ${err.message}`,
      err.hint ?? "see the target's log",
    );
  }
}
