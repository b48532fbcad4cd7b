import { createServer, type AddressInfo } from 'node:net';
import {
  CrossEngineUnsupportedError,
  InsufficientSpaceError,
  PostCopyUnavailableError,
} from '../../domain/errors/index.js';
import { requireHostFits } from '../../domain/host-fit.js';
import type { CreateMigrationBody, HostInfoReport, MigrationStrategy } from '../../domain/migration.js';
import type { ContainerInfo } from '../ports/container-runtime.js';
import { notMigratableAcrossEngines } from '../support/engine-configs.js';
import type { PeerAgent } from '../ports/peer-agent.js';
import type { MigrationContext, MigrationPlan } from './context.js';

/** Below this, auto keeps stop-and-copy: the pages of a small container cost less than post-copy's fixed steps. */
const POST_COPY_THRESHOLD_BYTES = 256 * 1024 * 1024;

/** Room a checkpoint needs on the target, estimated from the container's resident memory. */
const SPACE_OVERHEAD_BYTES = 64 * 1024 * 1024;

/**
 * The pre-flight, before anything is frozen: the target fits this host (CPU, CRIU) and has room, the strategy
 * both hosts can do, and whether the target has the image.
 */
export async function planMigration(
  ctx: MigrationContext,
  peer: PeerAgent,
  container: ContainerInfo,
  body: CreateMigrationBody,
): Promise<MigrationPlan> {
  const { deps } = ctx;
  const target = await peer.host();
  const here = (await deps.runtime.version()).engine;
  // Older agents name no engine: they manage Docker.
  const there = target.engine ?? 'docker';
  const why = here === there ? undefined : notMigratableAcrossEngines(container.config);
  if (why)
    throw new CrossEngineUnsupportedError(
      why,
      `migrate it to a host of the same engine (${here})`,
      there === 'docker' ? 'Docker' : 'Podman',
    );
  // Docker's cryo adopts Podman's layout (the network namespace, Podman's own mounts); Podman's restores cryo's.
  const format = here === 'podman' && there === 'docker' ? 'podman' : 'cryo';
  const criuVersion = await deps.engine.version();
  requireHostFits({ ...deps.host, criuVersion }, target);
  const resident = await deps.inspector.residentBytes(container.pid);
  const needed = resident + SPACE_OVERHEAD_BYTES;
  if (target.freeBytes - (target.minFreeBytes ?? 0) < needed)
    throw new InsufficientSpaceError(needed, target.freeBytes, target.minFreeBytes ?? 0);
  const plan = await chooseStrategy(ctx, body.strategy, container, target, resident);
  const layers = await deps.runtime.imageLayers(container.imageId);
  const imagePresent = await peer.hasImage({
    id: container.imageId,
    ref: container.image,
    ...(layers ? { layers } : {}),
  });
  return { ...plan, imagePresent, format };
}

/** Post-copy where asked and both hosts and the container can; auto also wants enough memory to be worth it. */
async function chooseStrategy(
  ctx: MigrationContext,
  requested: MigrationStrategy,
  container: ContainerInfo,
  target: HostInfoReport,
  resident: number,
): Promise<Pick<MigrationPlan, 'strategy' | 'pageServer'>> {
  const { deps } = ctx;
  if (requested === 'stop-and-copy') return { strategy: { requested, used: 'stop-and-copy' } };
  const reasons: string[] = [];
  const here = await deps.engine.postCopySupport();
  if (!here.ok) reasons.push(`this host: ${here.reason ?? 'no lazy pages'}`);
  if (!target.postCopy?.ok)
    reasons.push(`the target: ${target.postCopy?.reason ?? 'its cryo knows no post-copy'}`);
  if (!(await deps.runtime.canHoldFrozen(container.id)))
    reasons.push("the container is not dumped through runc here (Docker's checkpoint API path)");
  const address = normalizeAddress(deps.pageServerAddress ?? target.peerAddress);
  const port = address === undefined ? undefined : await freePort(address).catch(() => undefined);
  if (port === undefined)
    reasons.push(
      `no page server can listen here at ${address ?? 'the address the target sees'}: set CRYO_PAGE_SERVER_ADDRESS to an address of this host that the target reaches`,
    );
  if (requested === 'post-copy' && reasons.length > 0) throw new PostCopyUnavailableError(reasons);
  const threshold = deps.postCopyThresholdBytes ?? POST_COPY_THRESHOLD_BYTES;
  if (requested === 'auto' && reasons.length === 0 && resident < threshold)
    reasons.push(
      `its memory (${mib(resident)} MiB resident) is under the post-copy threshold (${mib(threshold)} MiB)`,
    );
  if (reasons.length > 0)
    return { strategy: { requested, used: 'stop-and-copy', fallback: reasons.join('; ') } };
  return { strategy: { requested, used: 'post-copy' }, pageServer: { address: address!, port: port! } };
}

/** A peer's view of an IPv4 caller may come as IPv4-mapped IPv6 (::ffff:10.0.0.1): CRIU wants the IPv4. */
function normalizeAddress(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

function mib(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}

/** A port free at `address` now, for a page server to listen on. */
function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
