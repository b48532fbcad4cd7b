import { FrameSchema, MAX_FRAME_BYTES, PROTOCOL_VERSION, type Frame } from './protocol.js';

export type ProtocolErrorCode = 'MALFORMED_FRAME' | 'UNKNOWN_VERSION' | 'FRAME_TOO_LARGE' | 'INVALID_FRAME';

/** A peer broke the protocol; the connection it came from is closed, and neither side goes down. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export interface Decoded {
  frame: Frame;
  /** The raw bytes that follow a `state` frame. */
  payload?: Buffer;
}

/** One frame as bytes: its JSON line, then the state bytes for a `state` frame. */
export function encodeFrame(frame: Frame, payload?: Buffer): Buffer {
  const line = Buffer.from(`${JSON.stringify(frame)}\n`);
  if (frame.type === 'state') {
    if (!payload || payload.length !== frame.size) {
      throw new ProtocolError('INVALID_FRAME', `a state frame announces ${frame.size} bytes`);
    }
    return Buffer.concat([line, payload]);
  }
  return line;
}

/**
 * Turns a byte stream into frames, incrementally. Any violation throws a ProtocolError, after which the decoder
 * refuses further input: the caller answers with an error frame and closes the connection.
 */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);
  private state: { frame: Frame & { type: 'state' }; size: number } | undefined;
  private payload: Buffer[] = [];
  private payloadBytes = 0;
  private failed: ProtocolError | undefined;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  push(chunk: Buffer): Decoded[] {
    if (this.failed) throw this.failed;
    try {
      return this.decode(chunk);
    } catch (err) {
      this.failed = err instanceof ProtocolError ? err : new ProtocolError('MALFORMED_FRAME', String(err));
      throw this.failed;
    }
  }

  private decode(chunk: Buffer): Decoded[] {
    const out: Decoded[] = [];
    if (this.state) {
      // State bytes are gathered as a list and joined once: joining on every chunk is quadratic in the payload.
      this.payload.push(chunk);
      this.payloadBytes += chunk.length;
      if (this.payloadBytes < this.state.size) return out;
      const all = Buffer.concat(this.payload, this.payloadBytes);
      this.payload = [];
      this.payloadBytes = 0;
      out.push({ frame: this.state.frame, payload: all.subarray(0, this.state.size) });
      chunk = all.subarray(this.state.size);
      this.state = undefined;
    }
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const nl = this.buffered.indexOf(0x0a);
      if (nl < 0) {
        if (this.buffered.length > this.maxFrameBytes) {
          throw new ProtocolError('FRAME_TOO_LARGE', `a frame is longer than ${this.maxFrameBytes} bytes`);
        }
        return out;
      }
      if (nl > this.maxFrameBytes) {
        throw new ProtocolError('FRAME_TOO_LARGE', `a frame is longer than ${this.maxFrameBytes} bytes`);
      }
      const line = this.buffered.subarray(0, nl).toString('utf8');
      this.buffered = this.buffered.subarray(nl + 1);
      if (line.trim() === '') continue;
      const frame = parseFrame(line);
      if (frame.type !== 'state') {
        out.push({ frame });
        continue;
      }
      if (this.buffered.length >= frame.size) {
        out.push({ frame, payload: this.buffered.subarray(0, frame.size) });
        this.buffered = this.buffered.subarray(frame.size);
        continue;
      }
      this.state = { frame, size: frame.size };
      this.payload = this.buffered.length > 0 ? [this.buffered] : [];
      this.payloadBytes = this.buffered.length;
      this.buffered = Buffer.alloc(0);
      return out;
    }
  }
}

export function parseFrame(line: string): Frame {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new ProtocolError('MALFORMED_FRAME', 'a frame is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ProtocolError('MALFORMED_FRAME', 'a frame is not a JSON object');
  }
  const version = (raw as { v?: unknown }).v;
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'UNKNOWN_VERSION',
      `protocol version ${JSON.stringify(version)} is not ${PROTOCOL_VERSION}`,
    );
  }
  const parsed = FrameSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ProtocolError(
      'INVALID_FRAME',
      `${issue?.path.join('.') || 'frame'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}
