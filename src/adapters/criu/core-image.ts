import { readFile } from 'node:fs/promises';
import { imageRecords } from './pagemap-image.js';
import { protoFields } from './proto-fields.js';

/** criu/include/magic.h */
const CORE_MAGIC = 0x55053847;
/** CoreEntry.mtype (criu/images/core.proto): the architecture the images were dumped on, as uname -m names it. */
const MTYPE_FIELD = 1;
const MACHINES: Record<number, string> = {
  1: 'x86_64',
  2: 'armv7l',
  3: 'aarch64',
  4: 'ppc64le',
  5: 's390x',
  6: 'mips64',
  7: 'loongarch64',
  8: 'riscv64',
};

/** The architecture a task's core image was dumped on; undefined for one CRIU does not name. */
export async function dumpedMachine(coreFile: string): Promise<string | undefined> {
  const [core] = imageRecords(await readFile(coreFile), CORE_MAGIC, coreFile, 'core');
  const mtype = core ? protoFields(core, coreFile).find((f) => f.field === MTYPE_FIELD)?.value : undefined;
  return typeof mtype === 'number' ? MACHINES[mtype] : undefined;
}
