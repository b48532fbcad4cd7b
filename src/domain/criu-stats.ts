/** CRIU's own statistics of a dump or restore (from stats-dump and stats-restore). */
export interface CriuStats {
  freezingMs?: number;
  frozenMs?: number;
  memdumpMs?: number;
  memwriteMs?: number;
  pagesScanned?: number;
  pagesWritten?: number;
  pagesRestored?: number;
  forkingMs?: number;
  restoreMs?: number;
}
