import { mkdir, readFile } from 'node:fs/promises';
import { logged } from '../support/background.js';
import { NO_LOGGER, type Logger } from '../ports/logger.js';
import path from 'node:path';
import { OPERATORS_SHARED_DIR, operatorCheckpointDir } from '../../domain/layout.js';
import type { Decoded } from '../../domain/sidecar/frame-codec.js';
import type { CheckpointMetadata } from '../../domain/sidecar/metadata.js';
import type { Frame, Mode, StateHandle } from '../../domain/sidecar/protocol.js';
import { replaceFile } from '../support/replace-file.js';
import type { CheckpointCoordinator, CoordinatorStore } from './checkpoint-coordinator.js';
import { SharedStateTracker } from './shared-state-tracker.js';
import type { SidecarChannel } from '../ports/sidecar-connector.js';
import { CheckpointStateFiles } from './state-files.js';

/**
 * The coordinator of one running job and its store: the checkpoint id counter, and the state files of the
 * checkpoint it is taking. It dispatches the job's frames to the coordinator.
 */
export class JobSession implements CoordinatorStore {
  private readonly coordinator: CheckpointCoordinator;
  private readonly shared = new SharedStateTracker();
  private channel: SidecarChannel | undefined;
  private operatorsDir: string | undefined;
  private current: CheckpointStateFiles | undefined;

  constructor(
    readonly job: string,
    private readonly counterFile: string,
    private readonly floor: number,
    create: (store: CoordinatorStore, send: (frame: Frame) => void) => CheckpointCoordinator,
    private readonly log: Logger = NO_LOGGER,
  ) {
    this.coordinator = create(this, (frame) => this.send(frame));
  }

  async run(channel: SidecarChannel, operatorsDir: string, publishedOperatorsDir: string, mode: Mode) {
    this.channel = channel;
    this.operatorsDir = operatorsDir;
    channel.onFrame((d) => this.onFrame(d));
    const lost = channel.closed.then(() =>
      this.coordinator.abortPending(
        'CONNECTION_LOST',
        'the connection to the job closed during the checkpoint',
      ),
    );
    try {
      // A new session knows no shared state yet: the job sends all of it once.
      const outcome = await this.coordinator.trigger(mode, { incremental: await this.shared.stillKept() });
      if (outcome.status === 'complete') this.shared.record(outcome.metadata, publishedOperatorsDir);
      else await this.current?.removeAll();
      return outcome;
    } finally {
      this.channel = undefined;
      await this.current?.close();
      this.current = undefined;
      void lost;
    }
  }

  // --- CoordinatorStore ---------------------------------------------------------------------------------------

  async lastCheckpointId(): Promise<number> {
    const text = await readFile(this.counterFile, 'utf8').catch(() => '0');
    const n = Number(text.trim());
    // A job restored elsewhere, or a cryo with another data directory: never below what the job has seen.
    return Math.max(Number.isSafeInteger(n) && n >= 0 ? n : 0, this.floor);
  }

  async reserveCheckpointId(id: number): Promise<void> {
    await mkdir(path.dirname(this.counterFile), { recursive: true, mode: 0o700 });
    await replaceFile(this.counterFile, `${id}\n`);
  }

  async writeMetadata(id: number, metadata: CheckpointMetadata): Promise<void> {
    if (this.current?.id !== id) throw new Error(`checkpoint ${id} is not the one being taken`);
    await this.current.writeMetadata(metadata);
  }

  async discard(id: number, handles: StateHandle[]): Promise<void> {
    if (this.current?.id === id) await this.current.discard(handles);
  }

  // --- frames ------------------------------------------------------------------------------------------------

  private send(frame: Frame): void {
    if (frame.type === 'trigger' && this.operatorsDir) {
      this.current = new CheckpointStateFiles(
        frame.checkpointId,
        path.join(this.operatorsDir, operatorCheckpointDir(frame.checkpointId)),
        path.join(this.operatorsDir, OPERATORS_SHARED_DIR),
      );
    }
    // `complete` waits until the whole checkpoint is published (SidecarService.finish).
    if (frame.type === 'complete') return;
    // A job gone meanwhile: its session learns so from the channel's close.
    this.channel?.send(frame).catch(logged(this.log, `sending ${frame.type} to job ${this.job}`));
  }

  private async onFrame({ frame, payload }: Decoded): Promise<void> {
    const current = this.current;
    switch (frame.type) {
      case 'state':
        if (current?.id === frame.checkpointId) await current.write(frame, payload ?? Buffer.alloc(0));
        return;
      case 'ack': {
        const problem =
          current?.id === frame.checkpointId
            ? await current.verify(frame, (h, sharedDir) => this.shared.link(h, sharedDir))
            : undefined;
        if (problem) {
          await this.coordinator.onDecline({ ...frame, type: 'decline', reason: problem });
        } else await this.coordinator.onAck(frame);
        return;
      }
      case 'decline':
        await this.coordinator.onDecline(frame);
        return;
      case 'error':
        await this.coordinator.abortPending('DECLINED', `the job answered ${frame.code}: ${frame.message}`);
        return;
      default:
        return;
    }
  }
}
