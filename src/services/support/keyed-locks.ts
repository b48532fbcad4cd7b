import { OperationInProgressError } from '../../domain/errors/index.js';

/** One operation per key at a time; a second one is refused at once, never queued. */
export class KeyedLocks {
  private readonly held = new Map<string, string>();

  acquire(key: string, operation: string, subject = key): () => void {
    const current = this.held.get(key);
    if (current !== undefined) throw new OperationInProgressError(subject, current);
    this.held.set(key, operation);
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.held.delete(key);
      }
    };
  }

  isHeld(key: string): boolean {
    return this.held.has(key);
  }
}
