import { execa } from 'execa';
import type { Checkpoint } from '../../src/domain/checkpoint.js';
import { sleep } from '../../harness/containers.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { BUSYBOX_IMAGE } from '../../harness/prerequisites.js';

const test = cryoSuite();

// A workload that keeps growing a file in its root filesystem, with short-lived `head` processes: the file
// grew between listing and packing rootfs-diff.tar ("Size mismatch"), and a `head` that exited while the
// pre-flight read it looked like a file on a detached mount (FILE_ON_DETACHED_MOUNT).
const GROW = 'while true; do head -c 262144 /dev/urandom >> /grow.bin; done';

test.serial(
  'leave-running checkpoints of a container that keeps writing its root filesystem all succeed',
  async (t) => {
    const { cryo, containers } = t.context;
    const name = containers.uniqueName('grow');
    await containers.run({ image: BUSYBOX_IMAGE, name, cmd: ['sh', '-c', GROW] });
    await sleep(500);
    const taken: Checkpoint[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
        leaveRunning: true,
      });
      t.is(res.status, 201, `checkpoint ${i}: ${JSON.stringify(res.body)}`);
      if (res.status === 201) taken.push(res.body);
    }
    t.is(taken.length, 8);

    // The last one restores into a new container that holds the file as it was packed.
    const copy = containers.uniqueName('grow-copy');
    const restored = await cryo.api('POST', `/v1/checkpoints/${taken.at(-1)!.id}/restore`, { name: copy });
    t.is(restored.status, 201, JSON.stringify(restored.body));
    const { stdout } = await execa('docker', ['exec', copy, 'sh', '-c', 'wc -c < /grow.bin']);
    t.true(Number(stdout.trim()) > 0, 'the copy has the file');
  },
);

// A shell that numbers lines into /count.log as fast as it can: after a restore it goes on from the number in its
// memory, so the file it finds must end where that number was, or lines repeat.
const NUMBER = 'i=0; while true; do i=$((i+1)); echo $i >> /count.log; done';
const GAPS = "awk 'NR > 1 && $1 != p + 1 { bad++ } { p = $1 } END { print NR, bad + 0 }' /count.log";

test.serial(
  'a leave-running checkpoint stores the root filesystem as the frozen workload left it, so a restore goes on without repeating',
  async (t) => {
    const { cryo, containers } = t.context;
    const name = containers.uniqueName('numbers');
    await containers.run({ image: BUSYBOX_IMAGE, name, cmd: ['sh', '-c', NUMBER] });
    await sleep(300);
    /** Lines in the restored copy's file, and how many of them do not follow the one before. */
    const restoreAndCount = async (consistentRootfs: boolean) => {
      const cp = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
        leaveRunning: true,
        consistentRootfs,
      });
      t.is(cp.status, 201, JSON.stringify(cp.body));
      const copy = containers.uniqueName('numbers-copy');
      const restored = await cryo.api('POST', `/v1/checkpoints/${cp.body.id}/restore`, { name: copy });
      t.is(restored.status, 201, JSON.stringify(restored.body));
      await sleep(300);
      const [lines, bad] = (await execa('docker', ['exec', copy, 'sh', '-c', GAPS])).stdout.trim().split(' ');
      return { lines: Number(lines), bad: Number(bad), pausedMs: cp.body.stats.pausedMs ?? 0 };
    };
    const frozen = await restoreAndCount(true);
    t.true(frozen.lines > 1000, `the copy numbered on (${frozen.lines} lines)`);
    t.is(frozen.bad, 0, 'read while frozen: every line follows the one before');
    t.true(frozen.pausedMs > 0);
    // The same read after the thaw finds lines the process state does not know of: the copy writes them again.
    let thawed = await restoreAndCount(false);
    // It shows only if the workload writes between the thaw and the read (once on a loaded machine it did not): three
    // chances.
    for (let i = 1; i < 3 && thawed.bad === 0; i++) thawed = await restoreAndCount(false);
    t.true(thawed.bad > 0, `read after the thaw: ${thawed.bad} lines repeat or skip`);
  },
);
