/** Checkpoints in use by a restore or an export, which a delete must not remove; counted per checkpoint. */
export class CheckpointLeases {
  private readonly holders = new Map<string, number>();

  /** Takes a lease on `id`; the returned function gives it back (once, whatever the calls). */
  take(id: string): () => void {
    this.holders.set(id, (this.holders.get(id) ?? 0) + 1);
    let returned = false;
    return () => {
      if (returned) return;
      returned = true;
      const n = (this.holders.get(id) ?? 1) - 1;
      if (n > 0) this.holders.set(id, n);
      else this.holders.delete(id);
    };
  }

  isLeased(id: string): boolean {
    return (this.holders.get(id) ?? 0) > 0;
  }
}
