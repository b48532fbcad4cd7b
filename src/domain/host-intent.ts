import { z } from 'zod';

/** What cryo is about to change outside its data directory; a record of it outlives a crash. */
export const HostIntentKind = {
  /** runc's CRIU options file, written for the length of one restore. */
  CRIU_CONFIG: 'criu-config',
  /** A pending-restore marker for cryo's OCI runtime. */
  RUNTIME_MARKER: 'runtime-marker',
  /** A container's restart policy, set to "no" while a stop-mode dump's exit is handled. */
  RESTART_POLICY: 'restart-policy',
  /** CRIU's images linked into Docker's checkpoints directory for `docker start --checkpoint`. */
  DOCKER_CHECKPOINT: 'docker-checkpoint',
  /** containerd's unpacked copies of a restored checkpoint in its temporary directory. */
  CONTAINERD_TMP: 'containerd-tmp',
  /** A container frozen by a dump; with heldBy, kept frozen for that migration, which alone may end it. */
  FROZEN: 'frozen',
  /** A container stopped by a stop-mode checkpoint that is not published yet. */
  STOP_MODE_CHECKPOINT: 'stop-mode-checkpoint',
  /** A container created for a restore that has not answered yet. */
  RESTORE_TARGET: 'restore-target',
  /** A container being created for a restore: until Docker gives its id, it is known by its name and label. */
  RESTORE_TARGET_CREATING: 'restore-target-creating',
  /** A container that replaces another in an in-place restore, still under its temporary name. */
  REPLACEMENT_NAME: 'replacement-name',
  /** A migration away from this host that has not ended: which host runs the workload is still to settle. */
  MIGRATION_SOURCE: 'migration-source',
} as const;

export const HostIntentSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal(HostIntentKind.CRIU_CONFIG), file: z.string(), before: z.string().nullable() }),
  z.object({ kind: z.literal(HostIntentKind.RUNTIME_MARKER), dir: z.string() }),
  z.object({
    kind: z.literal(HostIntentKind.RESTART_POLICY),
    containerId: z.string(),
    policy: z.object({ Name: z.string(), MaximumRetryCount: z.number().optional() }),
    /**
     * Set aside for a lazy restore until its pages are all in (a deadline, ms since the epoch): after a restart
     * it comes back only once they are, never for a container killed for want of them.
     */
    untilPagesBy: z.number().optional(),
  }),
  z.object({
    kind: z.literal(HostIntentKind.DOCKER_CHECKPOINT),
    containerId: z.string(),
    checkpointName: z.string(),
    dir: z.string(),
  }),
  z.object({
    kind: z.literal(HostIntentKind.CONTAINERD_TMP),
    tmpDir: z.string(),
    before: z.array(z.string()),
  }),
  z.object({
    kind: z.literal(HostIntentKind.FROZEN),
    containerId: z.string(),
    heldBy: z.string().optional(),
  }),
  z.object({
    kind: z.literal(HostIntentKind.STOP_MODE_CHECKPOINT),
    containerId: z.string(),
    checkpointId: z.string(),
  }),
  z.object({ kind: z.literal(HostIntentKind.RESTORE_TARGET), containerId: z.string() }),
  z.object({
    kind: z.literal(HostIntentKind.RESTORE_TARGET_CREATING),
    name: z.string(),
    /** Its io.cryo.restored-from label: a container of that name without it is somebody else's. */
    restoredFrom: z.string(),
  }),
  z.object({ kind: z.literal(HostIntentKind.REPLACEMENT_NAME), containerId: z.string(), name: z.string() }),
  z.object({
    kind: z.literal(HostIntentKind.MIGRATION_SOURCE),
    migrationId: z.string(),
    targetToken: z.string(),
    keepSource: z.boolean(),
  }),
]);
export type HostIntent = z.infer<typeof HostIntentSchema>;

/** A recorded intent, as the journal keeps it until the change is undone or complete. */
export interface JournaledIntent {
  id: number;
  intent: HostIntent;
  createdAt: string;
}
