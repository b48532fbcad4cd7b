import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  MAX_STATE_CHUNK_BYTES,
  PROTOCOL_VERSION,
  type Frame,
  type RestoreFrame,
  type StateHandle,
  STATE_CHUNK_BYTES,
} from '../../domain/sidecar/protocol.js';
import { encodeFrame, FrameDecoder, ProtocolError } from '../../domain/sidecar/frame-codec.js';
import type { SidecarJob, SnapshotReport } from './sidecar-job.js';

/**
 * The job's end of the sidecar protocol: a unix socket server that registers the job with whoever connects
 * (cryo), takes triggers, completes and aborts, streams each subtask's state and ack back on the connection
 * that triggered, and loads a restore. A peer that breaks the protocol gets an error frame and is closed.
 * Over 300 lines as one thing: the job's side of one protocol.
 */
export class SidecarServer {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Where acks of a checkpoint go: the connection that triggered it. */
  private readonly ackTo = new Map<number, net.Socket>();
  /** What to tell the keyed backends when a checkpoint completes: the handles of its blocks. */
  private readonly confirmations = new Map<number, (() => void)[]>();

  constructor(
    private readonly job: SidecarJob,
    private readonly socketPath: string,
    private readonly log: (message: string) => void,
  ) {}

  async listen(): Promise<void> {
    mkdirSync(path.dirname(this.socketPath), { recursive: true });
    // A socket file left by an earlier run of this container would make listen fail with EADDRINUSE.
    rmSync(this.socketPath, { force: true });
    // allowHalfOpen: cryo's end of file is answered by closing the socket, never by a lingering half.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** A subtask snapshotted at a barrier: serialise its state and send it with the ack, off the record path. */
  report(r: SnapshotReport): void {
    const socket = this.ackTo.get(r.checkpointId);
    if (!socket || socket.destroyed) return;
    setImmediate(() =>
      this.sendSnapshot(socket, r).catch((err: unknown) =>
        this.log(`could not send checkpoint ${r.checkpointId}'s state: ${String(err)}`),
      ),
    );
  }

  private async sendSnapshot(socket: net.Socket, r: SnapshotReport): Promise<void> {
    const { checkpointId, operator, subtask, snapshot } = r;
    try {
      const handles: StateHandle[] = [];
      const send = async (chunks: Buffer[], extra: Partial<StateHandle>): Promise<StateHandle> => {
        const name = randomUUID();
        const hash = createHash('sha256');
        let size = 0;
        for (const chunk of split(chunks)) {
          hash.update(chunk);
          size += chunk.length;
          await write(
            socket,
            encodeFrame(
              stateFrame(checkpointId, operator, subtask, name, chunk.length, extra.shared === true),
              chunk,
            ),
          );
        }
        const handle: StateHandle = { name, size, sha256: hash.digest('hex'), ...extra };
        handles.push(handle);
        return handle;
      };
      if (snapshot.keyed) {
        const blocks = new Map<number, StateHandle>();
        for (const part of snapshot.keyed.parts) {
          if ('reuse' in part) {
            handles.push(part.reuse);
            blocks.set(part.block, part.reuse);
          } else {
            blocks.set(part.block, await send(part.write(), { keyGroupRange: part.range, shared: true }));
          }
        }
        const confirm = snapshot.keyed.confirm;
        const list = this.confirmations.get(checkpointId) ?? [];
        list.push(() => confirm(blocks));
        this.confirmations.set(checkpointId, list);
      }
      if (snapshot.operator) await send(await snapshot.operator(), {});
      await write(
        socket,
        encodeFrame({
          v: PROTOCOL_VERSION,
          type: 'ack',
          checkpointId,
          operator,
          subtask,
          handles,
          ...(snapshot.offsets ? { offsets: snapshot.offsets } : {}),
        }),
      );
    } catch (err) {
      if (socket.destroyed) return;
      await write(
        socket,
        encodeFrame({
          v: PROTOCOL_VERSION,
          type: 'decline',
          checkpointId,
          operator,
          subtask,
          reason: String(err).slice(0, 4000),
        }),
      ).catch((e: unknown) => this.log(`could not decline checkpoint ${checkpointId}: ${String(e)}`));
    }
  }

  /**
   * A frame nobody waits for: cryo may have closed the connection meanwhile. A library must never take its host
   * process down, so a failed write is logged, never left as an unhandled rejection.
   */
  private send(socket: net.Socket, bytes: Buffer): void {
    write(socket, bytes).catch((err: unknown) =>
      this.log(`could not write to a sidecar connection: ${String(err)}`),
    );
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    const decoder = new FrameDecoder();
    let restore: PendingRestore | undefined;
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const [id, s] of this.ackTo) if (s === socket) this.ackTo.delete(id);
    });
    socket.on('error', () => undefined);
    socket.on('end', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const { frame, payload } of decoder.push(chunk))
          restore = this.onFrame(socket, frame, payload, restore);
      } catch (err) {
        const code = err instanceof ProtocolError ? err.code : 'INTERNAL';
        this.log(`closing a sidecar connection: ${String(err)}`);
        socket.end(
          encodeFrame({ v: PROTOCOL_VERSION, type: 'error', code, message: String(err).slice(0, 4000) }),
          () => socket.destroy(),
        );
      }
    });
    this.send(
      socket,
      encodeFrame({
        v: PROTOCOL_VERSION,
        type: 'register',
        job: this.job.name,
        maxParallelism: this.job.maxParallelism,
        operators: this.job.operators(),
        finished: this.job.finished,
        lastCheckpointId: this.job.highestCheckpointId,
        committedCheckpointId: this.job.committedCheckpointId,
      }),
    );
  }

  private onFrame(
    socket: net.Socket,
    frame: Frame,
    payload: Buffer | undefined,
    restore: PendingRestore | undefined,
  ): PendingRestore | undefined {
    switch (frame.type) {
      case 'trigger':
        if (this.job.awaitingRestore) {
          this.send(
            socket,
            encodeFrame({
              v: PROTOCOL_VERSION,
              type: 'error',
              code: 'RESTORE_PENDING',
              message: 'the job waits for its state',
            }),
          );
          return restore;
        }
        if (frame.checkpointId <= this.job.highestCheckpointId) {
          // Ids only increase: an older one would name epochs (and committed output) that exist already.
          this.send(
            socket,
            encodeFrame({
              v: PROTOCOL_VERSION,
              type: 'error',
              code: 'STALE_CHECKPOINT_ID',
              message: `checkpoint ${frame.checkpointId} is not above ${this.job.highestCheckpointId}, which the job has seen`,
            }),
          );
          return restore;
        }
        this.ackTo.set(frame.checkpointId, socket);
        this.job.trigger(frame.checkpointId, frame.timestamp, frame.mode, frame.incremental === true);
        return restore;
      case 'complete':
        for (const id of [...this.confirmations.keys()].sort((a, b) => a - b)) {
          if (id > frame.checkpointId) continue;
          for (const confirm of this.confirmations.get(id)!) confirm();
          this.confirmations.delete(id);
        }
        this.job.complete(frame.checkpointId);
        this.ackTo.delete(frame.checkpointId);
        return restore;
      case 'abort':
        this.confirmations.delete(frame.checkpointId);
        this.job.abort(frame.checkpointId);
        this.ackTo.delete(frame.checkpointId);
        return restore;
      case 'restore':
        if (!this.job.awaitingRestore)
          throw new ProtocolError('INVALID_FRAME', 'the job is not waiting for a restore');
        return this.beginRestore(socket, frame);
      case 'state': {
        if (!restore || frame.checkpointId !== restore.frame.checkpointId)
          throw new ProtocolError('INVALID_FRAME', 'state without a restore');
        const file = restore.files.get(frame.name);
        if (!file) throw new ProtocolError('INVALID_FRAME', `state ${frame.name} is not assigned`);
        file.chunks.push(payload!);
        file.received += payload!.length;
        if (file.received > file.handle.size)
          throw new ProtocolError('INVALID_FRAME', `state ${frame.name} is too long`);
        return this.maybeFinishRestore(socket, restore);
      }
      case 'error':
        this.log(`cryo reported ${frame.code}: ${frame.message}`);
        return restore;
      default:
        throw new ProtocolError('INVALID_FRAME', `cryo does not send ${frame.type} frames`);
    }
  }

  private beginRestore(socket: net.Socket, frame: RestoreFrame): PendingRestore | undefined {
    const files = new Map<string, { handle: StateHandle; chunks: Buffer[]; received: number }>();
    for (const a of frame.assignments)
      for (const h of a.handles) files.set(h.name, { handle: h, chunks: [], received: 0 });
    return this.maybeFinishRestore(socket, { frame, files });
  }

  private maybeFinishRestore(socket: net.Socket, restore: PendingRestore): PendingRestore | undefined {
    for (const f of restore.files.values()) if (f.received < f.handle.size) return restore;
    const loaded = new Map<string, Buffer>();
    for (const [name, f] of restore.files) {
      const bytes = Buffer.concat(f.chunks);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== f.handle.sha256)
        throw new ProtocolError('INVALID_FRAME', `state ${name} does not match its sha256`);
      loaded.set(name, bytes);
    }
    this.job.restore(restore.frame.checkpointId, restore.frame.assignments, loaded);
    this.log(`restored checkpoint ${restore.frame.checkpointId}`);
    this.send(
      socket,
      encodeFrame({ v: PROTOCOL_VERSION, type: 'restored', checkpointId: restore.frame.checkpointId }),
    );
    return undefined;
  }
}

interface PendingRestore {
  frame: RestoreFrame;
  files: Map<string, { handle: StateHandle; chunks: Buffer[]; received: number }>;
}

function stateFrame(
  checkpointId: number,
  operator: string,
  subtask: number,
  name: string,
  size: number,
  shared: boolean,
): Frame {
  return {
    v: PROTOCOL_VERSION,
    type: 'state',
    checkpointId,
    operator,
    subtask,
    name,
    size,
    ...(shared ? { shared: true } : {}),
  };
}

/** Frames of at most STATE_CHUNK_BYTES; small pieces are joined, so that a frame is never a few bytes. */
function* split(chunks: Buffer[]): Generator<Buffer> {
  const max = Math.min(STATE_CHUNK_BYTES, MAX_STATE_CHUNK_BYTES);
  let small: Buffer[] = [];
  let smallBytes = 0;
  for (const c of chunks) {
    for (let o = 0; o < c.length; o += max) {
      const piece = c.subarray(o, o + max);
      if (smallBytes + piece.length > max) {
        if (smallBytes > 0) yield Buffer.concat(small, smallBytes);
        small = [];
        smallBytes = 0;
      }
      small.push(piece);
      smallBytes += piece.length;
    }
  }
  if (smallBytes > 0) yield Buffer.concat(small, smallBytes);
}

function write(socket: net.Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      reject(new Error('the connection is closed'));
      return;
    }
    socket.write(bytes, (err) => (err ? reject(err) : resolve()));
  });
}
