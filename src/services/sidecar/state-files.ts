import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { OPERATORS_METADATA } from '../../domain/layout.js';
import type { CheckpointMetadata } from '../../domain/sidecar/metadata.js';
import {
  PROTOCOL_VERSION,
  type AckFrame,
  type StateFrame,
  type StateHandle,
} from '../../domain/sidecar/protocol.js';
import { replaceFile } from '../support/replace-file.js';

interface StateFile {
  path: string;
  handle: FileHandle;
  hash: Hash;
  size: number;
  sha256?: string;
}

/**
 * The state files of the one operator checkpoint being taken: written as the job streams them, checked against
 * the sizes and sha256 its acks name, and removed if the checkpoint is aborted.
 */
export class CheckpointStateFiles {
  private readonly files = new Map<string, StateFile>();

  constructor(
    readonly id: number,
    /** operators/chk-<id>/ */
    readonly dir: string,
    /** operators/shared/ */
    readonly sharedDir: string,
  ) {}

  async write(frame: StateFrame, payload: Buffer): Promise<void> {
    let f = this.files.get(frame.name);
    if (!f) {
      const dir = frame.shared ? this.sharedDir : this.dir;
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const file = path.join(dir, frame.name);
      f = { path: file, handle: await open(file, 'wx', 0o600), hash: createHash('sha256'), size: 0 };
      this.files.set(frame.name, f);
    }
    f.hash.update(payload);
    f.size += payload.length;
    await f.handle.write(payload);
  }

  /**
   * The files an ack names must be the ones streamed, whole: their size and sha256. A shared file that was not
   * sent is an unchanged one of an earlier checkpoint, which `linkShared` must provide. Made durable with the
   * whole checkpoint (fsync of every file, then the rename that publishes it), before `complete` is sent.
   */
  async verify(
    ack: AckFrame,
    linkShared: (h: StateHandle, sharedDir: string) => Promise<string | undefined>,
  ): Promise<string | undefined> {
    for (const h of ack.handles) {
      let f = this.files.get(h.name);
      if (!f && h.size === 0) {
        await this.write(
          {
            v: PROTOCOL_VERSION,
            type: 'state',
            checkpointId: ack.checkpointId,
            operator: ack.operator,
            subtask: ack.subtask,
            name: h.name,
            size: 0,
            ...(h.shared ? { shared: true } : {}),
          },
          Buffer.alloc(0),
        );
        f = this.files.get(h.name);
      }
      if (!f && h.shared) {
        const problem = await linkShared(h, this.sharedDir);
        if (problem) return problem;
        continue;
      }
      if (!f) return `state ${h.name} was never sent`;
      f.sha256 ??= f.hash.digest('hex');
      if (f.size !== h.size || f.sha256 !== h.sha256)
        return `state ${h.name} does not match its size or sha256`;
    }
    return undefined;
  }

  async writeMetadata(metadata: CheckpointMetadata): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await replaceFile(path.join(this.dir, OPERATORS_METADATA), JSON.stringify(metadata));
  }

  /** Drops the files of handles the coordinator discards (a duplicate or late ack). */
  async discard(handles: StateHandle[]): Promise<void> {
    for (const h of handles) {
      const f = this.files.get(h.name);
      this.files.delete(h.name);
      await f?.handle.close().catch(() => undefined);
      await rm(path.join(h.shared ? this.sharedDir : this.dir, h.name), { force: true });
    }
  }

  /** An aborted checkpoint leaves no state files: whatever was streamed for it goes. */
  async removeAll(): Promise<void> {
    await this.close();
    for (const f of this.files.values()) await rm(f.path, { force: true });
  }

  async close(): Promise<void> {
    for (const f of this.files.values()) await f.handle.close().catch(() => undefined);
  }
}
