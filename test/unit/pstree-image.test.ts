import test from 'ava';
import { pstreePids } from '../../src/adapters/criu/pstree-image.js';

// pstree.img as CRIU 4.2.1 wrote it for `sh -c 'while :; do ...; sleep 0.05; done'` dumped mid-sleep: the shell
// (21325, its own session and group) and the sleep (21416) it had started since the pre-dump report.
const REAL = Buffer.from(
  '19435654302750271200000008cda601100018cda60120cda60128cda6011400000008a8a70110cda60118cda60120cda60128a8a701',
  'hex',
);

test('pstree.img gives every task and thread of the dumped tree', (t) => {
  t.deepEqual(pstreePids(REAL).sort(), [21325, 21416]);
});

test('a truncated pstree.img is an error, not a shorter list', (t) => {
  t.throws(() => pstreePids(REAL.subarray(0, REAL.length - 3)), { message: /truncated/ });
});
