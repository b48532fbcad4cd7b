import { access, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { inBackground } from '../../services/support/background.js';
import { NO_LOGGER, type Logger } from '../../services/ports/logger.js';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerCriuOptions } from '../../domain/checkpoint.js';
import type { LazyRestore } from '../../services/ports/container-runtime.js';
import { DockerError } from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import { DEFAULT_RUNTIME_STATE_DIR } from '../../defaults.js';
import type { HostJournal } from '../../services/ports/host-journal.js';
import { criuLogFailure } from '../criu/log-tail.js';
import { checkpointError } from './checkpoint-error.js';
import type { DockerClient } from './docker-client.js';
import { runcCriuFlags } from './runc-checkpointer.js';

/** The runtime name cryo's OCI runtime (native-scripts/cryo-runtime) is registered under in daemon.json. */
export const CRYO_RUNTIME = 'cryo';

/** The names inside a marker, as native-scripts/cryo-runtime reads them. */
const Marker = {
  IMAGES: 'images',
  WORK: 'work',
  FLAGS: 'flags',
  CRIU_CONF: 'criu.conf',
  ADDRESSES: 'addresses',
  RESTORED: 'restored',
  RESTORE_LOG: 'restore.log',
  /** Where the pages come from, for a lazy restore: address, port and timeout in seconds, a line each. */
  LAZY_PAGES: 'lazy-pages',
  /** A link to the lazy restore's work directory, which outlives the marker. */
  LAZY_WORK: 'lazy-work',
  /** The seconds `runc restore` may take before the runtime ends it. */
  TIMEOUT: 'timeout',
} as const;

/** What the runtime's own deadline leaves of Docker's, so that `docker start` hears why rather than time out. */
const RUNTIME_DEADLINE_MARGIN_S = 15;

/** In a lazy restore's work directory ($CRYO_RUNTIME_STATE/lazy-<id>): the daemon's exit status, once it ended. */
const LAZY_RESULT = 'result';

/** Where the pages of a container restored lazily stand: fetching, all in, or failed (the container was killed). */
export type LazyPagesState = 'loading' | 'complete' | 'failed';

/** A restart policy set aside during a lazy restore, with its journal entry. */
interface HeldPolicy {
  entry: number;
  containerId: string;
  policy: RestartPolicy;
  /** Past it, the pages are over one way or the other (the runtime's timeout, and a margin). */
  deadline: number;
}

interface RestartPolicy {
  Name: string;
  MaximumRetryCount: number;
}

/** A file of one value a line, as the runtime's `read` loops take them. */
function asLines(values: string[]): string {
  return values.map((v) => `${v}\n`).join('');
}

/** Removes a marker; also after a crash. */
export async function removeRuntimeMarker(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Restores through cryo's runtime: a marker keyed by the container id tells it to turn dockerd's `create` into
 * `runc restore --detach` from cryo's own images, so a plain `docker start` restores. Nothing is written into
 * Docker's or containerd's directories, nor into /etc/criu/runc.conf: the CRIU options go with the marker.
 */
export class CryoRuntimeRestore {
  constructor(
    private readonly client: DockerClient,
    private readonly journal: HostJournal,
    private readonly stateDir = DEFAULT_RUNTIME_STATE_DIR,
    private readonly log: Logger = NO_LOGGER,
  ) {}

  /** How a lazy restore of this container stands; undefined when it was not restored lazily here. */
  async lazyPages(containerId: string): Promise<LazyPagesState | undefined> {
    const dir = path.join(this.stateDir, `lazy-${containerId}`);
    const result = await readFile(path.join(dir, LAZY_RESULT), 'utf8').catch(() => undefined);
    if (result !== undefined) return result.trim() === '0' ? 'complete' : 'failed';
    return (await access(dir).then(
      () => true,
      () => false,
    ))
      ? 'loading'
      : undefined;
  }

  async restore(
    containerId: string,
    imagesDir: string,
    criu: ContainerCriuOptions,
    criuConfig: string[],
    addresses: string[],
    lazy?: LazyRestore,
  ): Promise<void> {
    const marker = path.join(this.stateDir, containerId);
    const intent = this.journal.begin({ kind: HostIntentKind.RUNTIME_MARKER, dir: marker });
    try {
      await removeRuntimeMarker(marker);
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
      await mkdir(path.join(marker, Marker.WORK), { recursive: true, mode: 0o700 });
      await writeFile(path.join(marker, Marker.FLAGS), asLines(runcCriuFlags(criu)));
      const deadline = Math.max(10, Math.floor(this.client.timeoutMs / 1000) - RUNTIME_DEADLINE_MARGIN_S);
      await writeFile(path.join(marker, Marker.TIMEOUT), asLines([String(deadline)]));
      if (criuConfig.length > 0) await writeFile(path.join(marker, Marker.CRIU_CONF), asLines(criuConfig));
      if (addresses.length > 0) await writeFile(path.join(marker, Marker.ADDRESSES), asLines(addresses));
      if (lazy)
        await writeFile(
          path.join(marker, Marker.LAZY_PAGES),
          asLines([lazy.address, String(lazy.port), String(lazy.timeoutSeconds)]),
        );
      // A lazily restored container that its runtime kills (its pages stopped coming) must not be restarted
      // afresh by Docker: its restart policy is set aside until every page is in.
      const held = lazy ? await this.setPolicyAside(containerId, lazy.timeoutSeconds) : undefined;
      // Written last: the runtime acts on a marker only once its images are there.
      await symlink(imagesDir, path.join(marker, Marker.IMAGES));
      try {
        await this.client.call(() => this.client.container(containerId).start());
      } catch (err) {
        throw await this.failure(marker, err);
      }
      const restored = await access(path.join(marker, Marker.RESTORED)).then(
        () => true,
        () => false,
      );
      if (!restored) {
        // The container started afresh: it does not run under cryo's runtime after all.
        await this.client.callOr((d) => d.getContainer(containerId).kill(), [404, 409], undefined);
        throw new DockerError(
          `container ${containerId.slice(0, 12)} started without cryo's runtime restoring it; it was stopped again`,
        );
      }
      if (held)
        inBackground(
          this.log,
          `putting back the restart policy of ${containerId.slice(0, 12)}`,
          this.putPolicyBack(held),
        );
    } finally {
      await removeRuntimeMarker(marker);
      this.journal.end(intent);
    }
  }

  /** After a restart: watches again the lazy restores whose restart policy a crash left set aside. */
  resumeHeldPolicies(): void {
    for (const { id, intent } of this.journal.pending())
      if (intent.kind === HostIntentKind.RESTART_POLICY && intent.untilPagesBy !== undefined)
        inBackground(
          this.log,
          `putting back the restart policy of ${intent.containerId.slice(0, 12)}`,
          this.putPolicyBack({
            entry: id,
            containerId: intent.containerId,
            policy: { Name: intent.policy.Name, MaximumRetryCount: intent.policy.MaximumRetryCount ?? 0 },
            deadline: intent.untilPagesBy,
          }),
        );
  }

  /** Journaled until it is back, so that a restarted cryo puts it back once the pages are in. */
  private async setPolicyAside(containerId: string, timeoutSeconds: number): Promise<HeldPolicy | undefined> {
    const container = this.client.container(containerId);
    const found = (await this.client.call(() => container.inspect())).HostConfig.RestartPolicy;
    if (!found?.Name || found.Name === 'no') return undefined;
    const policy = { Name: found.Name, MaximumRetryCount: found.MaximumRetryCount ?? 0 };
    const deadline = Date.now() + (timeoutSeconds + 30) * 1000;
    const entry = this.journal.begin({
      kind: HostIntentKind.RESTART_POLICY,
      containerId,
      policy,
      untilPagesBy: deadline,
    });
    try {
      await this.client.call(() => container.update({ RestartPolicy: { Name: 'no' } }));
    } catch (err) {
      this.journal.end(entry);
      throw err;
    }
    return { entry, containerId, policy, deadline };
  }

  /** Once every page is in, the restart policy comes back; a container killed for missing pages keeps "no". */
  private async putPolicyBack({ entry, containerId, policy, deadline }: HeldPolicy): Promise<void> {
    while (Date.now() < deadline) {
      const state = await this.lazyPages(containerId);
      if (state === 'complete')
        await this.client.callOr(
          (d) => d.getContainer(containerId).update({ RestartPolicy: policy }),
          [404],
          undefined,
        );
      if (state !== 'loading') break;
      await sleep(200);
    }
    this.journal.end(entry);
  }

  /** CRIU's own log, when the runtime got as far as running it. */
  private async failure(marker: string, err: unknown): Promise<Error> {
    const read = (dir: string) => readFile(path.join(marker, dir, Marker.RESTORE_LOG), 'utf8');
    const log = await read(Marker.WORK).catch(() => read(Marker.LAZY_WORK).catch(() => ''));
    return log ? criuLogFailure('CRIU restore', log, undefined, err) : checkpointError(err, 'restore');
  }
}
