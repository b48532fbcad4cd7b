import { randomBytes } from 'node:crypto';
import { mkdir, readdir, realpath, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { DockerError } from '../../domain/errors/index.js';
import { HostIntentKind } from '../../domain/host-intent.js';
import type { HostJournal } from '../../services/ports/host-journal.js';
import type { DockerClient } from './docker-client.js';
import { PARENT_LINK } from '../criu/page-chain.js';

/** Names of the checkpoints cryo places in Docker's checkpoints directories. */
export const CHECKPOINT_NAME_PREFIX = 'cryo-';

/** Directory depth that an image link climbs out of; containerd unpacks into /tmp or $XDG_RUNTIME_DIR. */
const LINK_CLIMB = 32;

/**
 * Places CRIU's images in the container's own checkpoints directory for the length of `fn`, as links into
 * cryo's storage: `docker start --checkpoint-dir` is refused ("custom checkpointdir is not supported",
 * moby/moby#37344). Afterwards the checkpoint is deleted from Docker and the links removed.
 */
export async function withDockerCheckpoint(
  client: DockerClient,
  journal: HostJournal,
  containerId: string,
  imagesDir: string,
  fn: (checkpointName: string) => Promise<void>,
): Promise<void> {
  const root = await client.dockerRootDir();
  const checkpointName = `${CHECKPOINT_NAME_PREFIX}${randomBytes(6).toString('hex')}`;
  const target = path.join(root, 'containers', containerId, 'checkpoints', checkpointName);
  const intent = journal.begin({
    kind: HostIntentKind.DOCKER_CHECKPOINT,
    containerId,
    checkpointName,
    dir: target,
  });
  try {
    await linkImages(imagesDir, target);
    const listed = await client.call(() => client.checkpointApi(containerId).listCheckpoint());
    if (!(listed ?? []).some((c) => c.Name === checkpointName)) {
      throw new DockerError(
        `dockerd does not list checkpoint ${checkpointName} placed for container ${containerId}`,
      );
    }
    await fn(checkpointName);
  } finally {
    await removeDockerCheckpoint(client, containerId, checkpointName, target);
    journal.end(intent);
  }
}

/** Deletes a checkpoint cryo placed for a restore from Docker, and its links; also after a crash. */
export async function removeDockerCheckpoint(
  client: DockerClient,
  containerId: string,
  checkpointName: string,
  dir: string,
): Promise<void> {
  await client
    .checkpointApi(containerId)
    .deleteCheckpoint(checkpointName)
    .catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Recreates the image directory at `from` under `to` as symlinks. Docker tars the checkpoint directory into
 * containerd's content store and containerd unpacks it into /tmp for runc, so links there cost nothing while
 * copies cost seconds per GiB. CRIU opens some images from inside the container's mount
 * namespace, where absolute paths do not exist, so each link climbs from wherever containerd unpacked it to
 * the host's root (extra `..` stop at the root) and names the image from there.
 */
async function linkImages(from: string, to: string): Promise<void> {
  const climb = '../'.repeat(LINK_CLIMB);
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = path.resolve(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) await linkImages(src, dst);
    else if (entry.isFile()) await symlink(`${climb}${src.slice(1)}`, dst);
    // An incremental checkpoint's link to its parent's images, which CRIU follows from wherever it reads.
    else if (entry.isSymbolicLink() && entry.name === PARENT_LINK)
      await symlink(`${climb}${(await realpath(src)).slice(1)}`, dst);
  }
}
