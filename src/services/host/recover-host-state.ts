import { HostIntentKind, type HostIntent, type JournaledIntent } from '../../domain/host-intent.js';
import { LABEL_RESTORED_FROM } from '../../domain/labels.js';
import type { CheckpointCatalog } from '../ports/checkpoint-catalog.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import type { HostJournal, HostStateUndo } from '../ports/host-journal.js';

export interface HostRecoveryDeps {
  journal: HostJournal;
  undo: HostStateUndo;
  catalog: CheckpointCatalog;
  runtime: ContainerRuntime;
}

export interface HostRecovery {
  undone: JournaledIntent[];
  /** Left in the journal, to be tried again at the next start. */
  failed: { entry: JournaledIntent; error: string }[];
}

/**
 * At start-up, before any request: undoes, newest first, every change outside the data directory that an
 * interrupted operation left recorded. A container that a stop-mode checkpoint stopped is started again unless
 * that checkpoint was published.
 */
export async function recoverHostState(deps: HostRecoveryDeps): Promise<HostRecovery> {
  const recovery: HostRecovery = { undone: [], failed: [] };
  for (const entry of deps.journal.pending().reverse()) {
    // The migration service settles these with the target once cryo serves (MigrationService.resumeInterrupted):
    // a source kept frozen for a migration may only run again once the target is known not to run it.
    if (entry.intent.kind === HostIntentKind.MIGRATION_SOURCE) continue;
    if (entry.intent.kind === HostIntentKind.FROZEN && entry.intent.heldBy !== undefined) continue;
    // The runtime watches these pages again once cryo serves (ContainerRuntime.resumeLazyRestores).
    if (entry.intent.kind === HostIntentKind.RESTART_POLICY && entry.intent.untilPagesBy !== undefined)
      continue;
    try {
      await undoOne(deps, entry.intent);
      deps.journal.end(entry.id);
      recovery.undone.push(entry);
    } catch (err) {
      recovery.failed.push({ entry, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return recovery;
}

async function undoOne(deps: HostRecoveryDeps, intent: HostIntent): Promise<void> {
  const { runtime } = deps;
  switch (intent.kind) {
    case HostIntentKind.STOP_MODE_CHECKPOINT: {
      if (deps.catalog.get(intent.checkpointId)) return;
      const container = await runtime.inspect(intent.containerId);
      if (container && !container.running) await runtime.start(container.id);
      return;
    }
    case HostIntentKind.RESTORE_TARGET:
      // Nobody learnt that it runs: the restore never answered.
      return runtime.remove(intent.containerId);
    case HostIntentKind.RESTORE_TARGET_CREATING: {
      // Docker may have finished the create after cryo died.
      const found = await runtime.inspect(intent.name);
      if (found && labelsOf(found)[LABEL_RESTORED_FROM] === intent.restoredFrom)
        await runtime.remove(found.id);
      return;
    }
    case HostIntentKind.REPLACEMENT_NAME: {
      // The original is gone already (the target's intent ended before it was removed): the replacement takes its name.
      const holder = await runtime.inspect(intent.name);
      if (!holder && (await runtime.inspect(intent.containerId)))
        await runtime.rename(intent.containerId, intent.name);
      return;
    }
    default:
      return deps.undo.undo(intent);
  }
}

/** A container's labels, from the engine's description of it. */
function labelsOf(container: { config: unknown }): Record<string, string> {
  return (container.config as { Config?: { Labels?: Record<string, string> | null } }).Config?.Labels ?? {};
}
