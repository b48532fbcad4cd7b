import type { Dumper } from '../../domain/preflight.js';
import type { ProcessReport } from '../../domain/process.js';

/** Reads what a process tree holds, before anything is frozen. */
export interface ProcessInspector {
  exists(pid: number): Promise<boolean>;
  /** Whether `pid` runs, is a zombie not yet reaped, or is gone. */
  liveness(pid: number): Promise<'running' | 'zombie' | 'gone'>;
  /** The process's resident memory (VmRSS), 0 when it cannot be read. */
  residentBytes(pid: number): Promise<number>;
  report(root: number): Promise<ProcessReport>;
  /** Who CRIU runs as: cryo's own ids and capabilities, which the tools it starts inherit. */
  dumper(): Promise<Dumper>;
}
