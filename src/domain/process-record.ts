import { z } from 'zod';
import { CriuOptionsSchema } from './process.js';

/** What a process checkpoint keeps beside its images (PROCESS_RECORD), to restore it the same way. */
export const ProcessRecordSchema = z.object({
  pid: z.number(),
  pids: z.array(z.number()).default([]),
  options: CriuOptionsSchema,
});
export type ProcessRecord = z.infer<typeof ProcessRecordSchema>;
