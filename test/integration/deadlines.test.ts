import { cryoSuite } from '../../harness/cryo-suite.js';
import { BUSYBOX_IMAGE } from '../../harness/prerequisites.js';
import { bringUpSecondHost } from '../../harness/second-host.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

// Each wait of cryo's made to hang for real; the deadline must end it with DEADLINE_EXCEEDED and leave cryo serving.
const test = cryoSuite();

test.serial(
  'a paused dockerd (kill -STOP) fails a checkpoint at the Docker deadline; the workload runs on, and cryo serves the next request',
  async (t) => {
    const { host, cryo } = await bringUpSecondHost(t, { cryo: { dockerTimeoutMs: 3_000 } });
    await host.loadImage(BUSYBOX_IMAGE);
    const name = 'paused-engine';
    await host.docker([
      'run',
      '-d',
      '--name',
      name,
      BUSYBOX_IMAGE,
      'sh',
      '-c',
      'i=0; while :; do i=$((i+1)); echo $i > /t; sleep 0.05; done',
    ]);
    const stamp = async () => (await host.docker(['exec', name, 'cat', '/t'])).stdout.trim();

    await host.pauseDaemon(true);
    let paused = true;
    t.teardown(async () => {
      if (paused) await host.pauseDaemon(false);
    });
    const started = performance.now();
    const refused = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/checkpoints`, {
      leaveRunning: true,
    });
    const waited = performance.now() - started;
    await host.pauseDaemon(false);
    paused = false;

    t.is(refused.status, 504, JSON.stringify(refused.body));
    t.is(refused.body.code, ErrorCode.DEADLINE_EXCEEDED);
    t.regex(refused.body.message, /^dockerd did not finish within 3 s/);
    t.regex(refused.body.hint ?? '', /CRYO_DOCKER_TIMEOUT_MS/);
    t.true(waited >= 2_900 && waited < 30_000, `answered after ${Math.round(waited)} ms`);

    // Nothing was frozen: the workload goes on, and cryo, still up, checkpoints it once dockerd answers again.
    const before = await stamp();
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.not(await stamp(), before, 'the workload runs');
    const health = await cryo.api<{ status: string }>('GET', '/v1/health');
    t.is(health.status, 200);
    const done = await cryo.api<{ id: string; sizeBytes: number }>(
      'POST',
      `/v1/containers/${name}/checkpoints`,
      {
        leaveRunning: true,
      },
    );
    t.is(done.status, 201, JSON.stringify(done.body));
    t.true(done.body.sizeBytes > 0);
  },
);
