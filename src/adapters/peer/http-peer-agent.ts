import { Readable } from 'node:stream';
import {
  CheckpointSchema,
  RestoreResultSchema,
  type Checkpoint,
  type RestoreResult,
} from '../../domain/checkpoint.js';
import { ErrorBodySchema } from '../../domain/error-body.js';
import { streamRequest } from './stream-request.js';
import { ErrorCode, TargetError } from '../../domain/errors/index.js';
import { HostInfoSchema, type HostInfoReport } from '../../domain/migration.js';
import type { PeerAgent } from '../../services/peer-agent.js';

/** A restore on the target that takes longer than this counts as failed, and the migration rolls back. */
const RESTORE_TIMEOUT_MS = 5 * 60_000;

/** A cryo agent reached over its REST API with fetch; request bodies stream (no archive is buffered). */
export class HttpPeerAgent implements PeerAgent {
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
  ) {}

  async host(): Promise<HostInfoReport> {
    return HostInfoSchema.parse(await this.json('GET', '/v1/host'));
  }

  async hasImage(id: string): Promise<boolean> {
    const body = (await this.json('GET', `/v1/images/present?id=${encodeURIComponent(id)}`)) as {
      present: boolean;
    };
    return body.present === true;
  }

  async loadImage(tar: NodeJS.ReadableStream): Promise<void> {
    await this.json('POST', '/v1/images', tar, 'application/x-tar', 0);
  }

  async importArchive(archive: Readable): Promise<Checkpoint> {
    return CheckpointSchema.parse(
      await this.json('POST', '/v1/checkpoints', archive, 'application/x-tar', 0),
    );
  }

  async restore(checkpointId: string, name: string): Promise<RestoreResult> {
    // Should this request time out or its connection drop, the source rolls back: the target must not keep a copy.
    const body = Readable.from([JSON.stringify({ name, ports: 'same', abandonOnDisconnect: true })]);
    return RestoreResultSchema.parse(
      await this.json(
        'POST',
        `/v1/checkpoints/${checkpointId}/restore`,
        body,
        'application/json',
        RESTORE_TIMEOUT_MS,
      ),
    );
  }

  async deleteCheckpoint(checkpointId: string): Promise<void> {
    await this.json('DELETE', `/v1/checkpoints/${checkpointId}`);
  }

  private async json(
    method: string,
    path: string,
    body?: NodeJS.ReadableStream,
    contentType?: string,
    timeoutMs = this.timeoutMs,
  ): Promise<unknown> {
    let status: number;
    let text: string;
    try {
      const headers = {
        authorization: `Bearer ${this.token}`,
        ...(contentType ? { 'content-type': contentType } : {}),
      };
      const signal = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
      if (body) {
        // Not fetch: a target that refuses an import early answers before it has read the archive, and fetch
        // would report only the broken pipe.
        ({ status, text } = await streamRequest(
          method,
          `${this.url}${path}`,
          headers,
          Readable.from(body as AsyncIterable<Buffer>),
          signal,
        ));
      } else {
        const res = await fetch(`${this.url}${path}`, { method, headers, ...(signal ? { signal } : {}) });
        status = res.status;
        text = await res.text();
      }
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new TargetError(
        ErrorCode.TARGET_UNREACHABLE,
        `cannot reach the target ${this.url}: ${cause?.code ?? cause?.message ?? (err as { code?: string }).code ?? (err as Error).message}`,
        'check the target URL and that cryo runs and listens there (CRYO_LISTEN)',
      );
    }
    const parsed: unknown = text ? JSON.parse(text) : null;
    if (status === 401) {
      throw new TargetError(
        ErrorCode.TARGET_UNAUTHORIZED,
        `the target ${this.url} refused the token`,
        "give the target's token (its CRYO_TOKEN or <data dir>/token) as targetToken",
      );
    }
    if (status < 200 || status > 299) {
      const err = ErrorBodySchema.safeParse(parsed);
      const detail = err.success ? `${err.data.code}: ${err.data.message}` : `HTTP ${status}`;
      throw new TargetError(
        ErrorCode.TARGET_REFUSED,
        `the target ${this.url} answered ${method} ${path} with ${detail}`,
        err.success && err.data.hint ? err.data.hint : "see the target's log",
      );
    }
    return parsed;
  }
}
