import { closeSync, openSync, readSync } from 'node:fs';

/** A replayable source: it reads from offsets, and reports the offsets it has reached. */
export interface SourceFunction<T> {
  /** Opens subtask `subtask` of `parallelism` at the given offsets (keyed by partition; missing: 0). */
  open(subtask: number, parallelism: number, offsets: Record<string, number>): SourceReader<T>;
}

export interface SourceReader<T> {
  /** Emits up to `max` records; false once every partition is read to its end. */
  poll(emit: (value: T) => void, max: number): boolean;
  /** The offset of the next unread record of each partition this reader owns. */
  offsets(): Record<string, number>;
  close(): void;
}

const READ_BYTES = 64 << 10;

/**
 * Lines of files, read by byte offset: each file is a partition, and subtask i of p reads the files whose
 * index is i modulo p. The files must not change while the job runs.
 */
export class FileLinesSource implements SourceFunction<string> {
  constructor(private readonly files: string[]) {}

  open(subtask: number, parallelism: number, offsets: Record<string, number>): SourceReader<string> {
    const mine = this.files.filter((_, i) => i % parallelism === subtask);
    return new FileLinesReader(mine, offsets);
  }
}

class FileLinesReader implements SourceReader<string> {
  private readonly positions: Map<string, number>;
  private index = 0;
  private fd: number | undefined;
  private pending = '';
  private pendingStart = 0;
  private readAt = 0;

  constructor(
    private readonly files: string[],
    offsets: Record<string, number>,
  ) {
    this.positions = new Map(files.map((f) => [f, offsets[f] ?? 0]));
  }

  poll(emit: (value: string) => void, max: number): boolean {
    let emitted = 0;
    while (emitted < max) {
      const file = this.files[this.index];
      if (file === undefined) return false;
      if (this.fd === undefined) {
        this.fd = openSync(file, 'r');
        this.readAt = this.positions.get(file)!;
        this.pendingStart = this.readAt;
        this.pending = '';
      }
      let nl = this.pending.indexOf('\n');
      if (nl < 0) {
        const buf = Buffer.allocUnsafe(READ_BYTES);
        const n = readSync(this.fd, buf, 0, READ_BYTES, this.readAt);
        if (n === 0) {
          if (this.pending !== '') {
            // The last line has no newline.
            this.positions.set(file, this.pendingStart + Buffer.byteLength(this.pending));
            emit(this.pending);
            emitted++;
          }
          closeSync(this.fd);
          this.fd = undefined;
          this.index++;
          continue;
        }
        // Only whole lines are decoded, so a multi-byte character is never split.
        const last = buf.lastIndexOf(0x0a, n - 1);
        const take = last < 0 ? n : last + 1;
        this.pending += buf.toString('utf8', 0, take);
        this.readAt += take;
        nl = this.pending.indexOf('\n');
        if (nl < 0) continue;
      }
      let start = 0;
      while (nl >= 0 && emitted < max) {
        const line = this.pending.slice(start, nl);
        this.pendingStart += Buffer.byteLength(line) + 1;
        this.positions.set(file, this.pendingStart);
        emit(line);
        emitted++;
        start = nl + 1;
        nl = this.pending.indexOf('\n', start);
      }
      this.pending = this.pending.slice(start);
    }
    return true;
  }

  offsets(): Record<string, number> {
    return Object.fromEntries(this.positions);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
