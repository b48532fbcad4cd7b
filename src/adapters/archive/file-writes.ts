/** Small entries at most in memory while they wait for the disk. */
const MAX_PENDING_WRITES = 32;

/** Writes of small entries in flight; the first failure is thrown by the next `add` or by `settle`. */
export class FileWrites {
  private pending: Promise<void>[] = [];
  private failure: unknown;

  async add(write: Promise<void>): Promise<void> {
    this.pending.push(write.catch((err: unknown) => void (this.failure ??= err)));
    // Bounds the memory that entries waiting for the disk hold.
    if (this.pending.length >= MAX_PENDING_WRITES || this.failure !== undefined) await this.settle();
  }

  async settle(): Promise<void> {
    await Promise.all(this.pending);
    this.pending = [];
    if (this.failure !== undefined) throw this.failure;
  }
}
