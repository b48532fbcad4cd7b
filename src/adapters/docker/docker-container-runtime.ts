import type { HostJournal } from '../../services/ports/host-journal.js';
import type { Logger } from '../../services/ports/logger.js';
import type { CommandDeadline } from '../exec/run-command.js';
import { CgroupFreezer } from './cgroup-freezer.js';
import { ComposedContainerRuntime, type RuntimeParts } from './composed-container-runtime.js';
import { ContainerdCtl } from './containerd-ctl.js';
import { ContainerdLeftovers } from './containerd-leftovers.js';
import { CryoRuntimeRestore } from './cryo-runtime-restore.js';
import type { DockerClient } from './docker-client.js';
import { DockerCheckpointing } from './docker-checkpointing.js';
import { DockerEngineInfo } from './docker-engine-info.js';
import { DockerImages } from './docker-images.js';
import { DockerLifecycle } from './docker-lifecycle.js';
import { DockerRestore } from './docker-restore.js';
import { RuncCheckpointer } from './runc-checkpointer.js';
import { RuncDump } from './runc-dump.js';

export interface DockerContainerRuntimeOptions {
  /** containerd's socket for this dockerd; found under dockerd's exec root when not given. */
  containerdSocket?: string;
  /** Where containerd unpacks a checkpoint for a restore. */
  containerdTmpDir?: string;
  /** dockerd's --exec-root (default /var/run/docker), where the runtime bundles live. */
  execRoot?: string;
  /** The runc binary for direct dumps (default: runc on PATH). */
  runc?: string;
  /** Dump through Docker's checkpoint API even where runc could be driven directly. */
  dockerCheckpointApi?: boolean;
  /** Where cryo's OCI runtime finds pending-restore markers (its CRYO_RUNTIME_STATE). */
  runtimeStateDir?: string;
  /** How long a lazy dump may take to start serving its pages while the workload is frozen. */
  lazyDumpTimeoutMs?: number;
  /** The deadline of the helper commands (ctr). */
  commandDeadline?: CommandDeadline;
  /** Where failures that the runtime swallows (a thaw, a restart policy put back in the background) are logged. */
  log?: Logger;
}

/**
 * Containers run by dockerd, each capability a class of its own (docker-*.ts): its API for their life cycle and
 * images, runc for dumps, and for restores cryo's OCI runtime (native-scripts/cryo-runtime), or
 * `docker start --checkpoint` for a runc container where that still works.
 */
export class DockerContainerRuntime extends ComposedContainerRuntime {
  constructor(client: DockerClient, journal: HostJournal, options: DockerContainerRuntimeOptions = {}) {
    super(dockerParts(client, journal, options));
  }
}

function dockerParts(
  client: DockerClient,
  journal: HostJournal,
  options: DockerContainerRuntimeOptions,
): RuntimeParts {
  const execRoot = options.execRoot ?? '/var/run/docker';
  const freezer = new CgroupFreezer(options.log);
  const runc = new RuncCheckpointer(options.runc);
  const runtimeRestore = new CryoRuntimeRestore(client, journal, options.runtimeStateDir, options.log);
  const engine = new DockerEngineInfo(client);
  const containers = new DockerLifecycle(client, engine, runtimeRestore, execRoot);
  const runcDump = new RuncDump(
    client,
    runc,
    journal,
    async (id) => Boolean((await containers.inspect(id))?.running),
    freezer,
    options.lazyDumpTimeoutMs,
  );
  const dumps = new DockerCheckpointing(
    client,
    containers,
    runc,
    runcDump,
    freezer,
    execRoot,
    options.dockerCheckpointApi ?? false,
  );
  const leftovers = new ContainerdLeftovers(
    new ContainerdCtl(execRoot, options.containerdSocket, options.commandDeadline),
    journal,
    options.containerdTmpDir,
  );
  const restores = new DockerRestore(client, journal, engine, runtimeRestore, leftovers);
  return { engine, containers, dumps, restores, images: new DockerImages(client) };
}
