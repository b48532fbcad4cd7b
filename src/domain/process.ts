import { z } from 'zod';

/** A pid in a path: decimal digits only (Number() would also read 0x10, 1e0, +1, 1.0 and 0b1). */
export const PidSchema = z
  .string()
  .regex(/^[0-9]{1,10}$/, 'a pid is a decimal number (digits only)')
  .transform(Number)
  .pipe(
    z
      .number()
      .int('a pid is a whole number')
      .min(2, 'pid 0 and 1 cannot be checkpointed')
      .max(4_194_304, 'no pid is that large'),
  );

export const FdSchema = z.object({
  fd: z.number().int(),
  kind: z.enum([
    'file',
    'directory',
    'pipe',
    'unix',
    'inet',
    'netlink',
    'socket',
    'eventfd',
    'epoll',
    'signalfd',
    'timerfd',
    'inotify',
    'io_uring',
    'tty',
    'device',
    'anon',
    'other',
  ]),
  target: z.string(),
  deleted: z.boolean().optional(),
  inode: z.number().optional(),
  device: z.string().optional().describe('major:minor'),
  mountId: z.number().optional().describe('for files and directories: the mount they are on'),
  locks: z.number().optional().describe('file locks (flock, POSIX, OFD) held through this descriptor'),
  mountDetached: z
    .boolean()
    .optional()
    .describe("true when that mount is no longer in the process's mount table (unmounted with umount -l)"),
  socket: z
    .object({
      type: z.string().optional(),
      state: z.string().optional(),
      path: z.string().optional(),
      peerInode: z.number().optional(),
      peerOutsideTree: z.boolean().optional(),
      proto: z.string().optional(),
      local: z.string().optional(),
      remote: z.string().optional(),
    })
    .optional(),
});
export type Fd = z.infer<typeof FdSchema>;

export const ProcessInfoSchema = z.object({
  pid: z.number(),
  ppid: z.number(),
  comm: z.string(),
  cmdline: z.array(z.string()),
  state: z.string(),
  threads: z.number(),
  /** Real, effective, saved and filesystem uid, from /proc/<pid>/status. */
  uids: z.array(z.number()),
  gids: z.array(z.number()),
  namespaces: z.record(z.string(), z.number()),
  cgroup: z.string(),
  memory: z.object({ rss: z.number(), anonymous: z.number(), fileBacked: z.number(), shared: z.number() }),
  fds: z.array(FdSchema),
});
export type ProcessInfo = z.infer<typeof ProcessInfoSchema>;

export const ProcessReportSchema = z.object({
  root: z.number(),
  processes: z.array(ProcessInfoSchema),
});
export type ProcessReport = z.infer<typeof ProcessReportSchema>;

export const ProblemSchema = z.object({
  code: z.string(),
  message: z.string(),
  hint: z.string(),
  pid: z.number().optional(),
  fd: z.number().optional(),
});
export type Problem = z.infer<typeof ProblemSchema>;

export const PreflightSchema = z.object({ checkpointable: z.boolean(), problems: z.array(ProblemSchema) });
export type Preflight = z.infer<typeof PreflightSchema>;

/** The CRIU options cryo passes through; anything else is refused before it reaches criu. */
export const CriuOptionsSchema = z.strictObject({
  tcpEstablished: z.boolean().default(false),
  fileLocks: z.boolean().default(false),
  shellJob: z.boolean().default(false),
  externalUnixSockets: z
    .boolean()
    .default(false)
    .describe('let CRIU dump unix sockets whose peer is outside the tree'),
});
export type CriuOptions = z.infer<typeof CriuOptionsSchema>;
