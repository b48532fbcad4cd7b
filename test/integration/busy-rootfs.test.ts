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
