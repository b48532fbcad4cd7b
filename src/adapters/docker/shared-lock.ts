/**
 * Many holders at once, or one alone: shared holders wait while an exclusive one holds or waits for the lock,
 * and an exclusive one waits until every shared holder is done.
 */
export class SharedLock {
  private holders = 0;
  private exclusiveHeld: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveHeld) await this.exclusiveHeld;
    this.holders++;
    try {
      return await fn();
    } finally {
      this.holders--;
      if (this.holders === 0) this.drained?.();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveHeld) await this.exclusiveHeld;
    let release!: () => void;
    this.exclusiveHeld = new Promise((resolve) => (release = resolve));
    try {
      if (this.holders > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.drained = undefined;
      return await fn();
    } finally {
      this.exclusiveHeld = undefined;
      release();
    }
  }
}
