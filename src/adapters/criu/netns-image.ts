import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IMG_COMMON_MAGIC, imageRecords, varintFields } from './pagemap-image.js';
import { protoFields } from './proto-fields.js';

/** criu/include/magic.h */
const NETNS_MAGIC = 0x55933752;
const IDS_MAGIC = 0x54432030;
/** runc's key for a network namespace the runtime provides (libcontainer/criu_linux.go, criuNsToKey). */
const EXTERNAL_NETNS_KEY = 'extRootNetNS';
/** TaskKobjIdsEntry.net_ns_id (criu/images/core.proto); NetnsEntry.ext_key (criu/images/netdev.proto). */
const NET_NS_ID_FIELD = 6;
const EXT_KEY_FIELD = 8;
/** The container's first process: CRIU names images by the pid inside the container. */
const ROOT_TASK_IDS = 'ids-1.img';

export const netnsImageName = (id: number): string => `netns-${id}.img`;

/** A netns image that names the namespace as external: CRIU's restore joins the one runc passes under the key. */
export function externalNetnsImage(): Buffer {
  const key = Buffer.from(EXTERNAL_NETNS_KEY);
  const record = Buffer.concat([Buffer.from([(EXT_KEY_FIELD << 3) | 2, key.length]), key]);
  const head = Buffer.alloc(12);
  head.writeUInt32LE(IMG_COMMON_MAGIC, 0);
  head.writeUInt32LE(NETNS_MAGIC, 4);
  head.writeUInt32LE(record.length, 8);
  return Buffer.concat([head, record]);
}

/** Whether a netns image names its namespace external (an ext_key), as the dumps of Podman's containers do. */
export function namesExternalNetns(buf: Buffer, name: string): boolean {
  const [entry] = imageRecords(buf, NETNS_MAGIC, name, 'netns');
  return entry !== undefined && protoFields(entry, name).some((f) => f.field === EXT_KEY_FIELD);
}

/** The id of the root task's network namespace, from its ids image; undefined when it has none of its own. */
export async function rootNetnsId(imagesDir: string): Promise<number | undefined> {
  const file = path.join(imagesDir, ROOT_TASK_IDS);
  const buf = await readFile(file).catch(() => undefined);
  if (!buf) return undefined;
  const [ids] = imageRecords(buf, IDS_MAGIC, file, 'ids');
  return ids ? varintFields(ids, file).get(NET_NS_ID_FIELD) : undefined;
}
