import type { ProcessReport } from '../domain/process.js';

/** Reads what a process tree holds, before anything is frozen. */
export interface ProcessInspector {
  exists(pid: number): Promise<boolean>;
  report(root: number): Promise<ProcessReport>;
}
