import type { Dumper } from '../domain/preflight.js';
import type { ProcessReport } from '../domain/process.js';

/** Reads what a process tree holds, before anything is frozen. */
export interface ProcessInspector {
  exists(pid: number): Promise<boolean>;
  report(root: number): Promise<ProcessReport>;
  /** Who CRIU runs as: cryo's own ids and capabilities, which the tools it starts inherit. */
  dumper(): Promise<Dumper>;
}
