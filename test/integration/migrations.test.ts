import { execa } from 'execa';
import type { Checkpoint } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import type { Migration } from '../../src/domain/migration.js';
import { counterAtLeast, freePort, hostPort, inspect, readCounter } from '../../harness/containers.js';
import type { ExecutionContext } from 'ava';
import { cryoSuite, type CryoSuiteContext } from '../../harness/cryo-suite.js';
import { CryoProcess } from '../../harness/cryo-process.js';
import { TestCryo, type TestCryoOptions } from '../../harness/cryo.js';
import { BUSYBOX_IMAGE, NODE_IMAGE, REDIS_IMAGE } from '../../harness/prerequisites.js';
import { bringUpSecondHost, SecondHost } from '../../harness/second-host.js';
import { ErrorCode } from '../../src/domain/errors/index.js';
import { eventually } from '../../harness/eventually.js';

const test = cryoSuite();

/** Migrates `name` from `source` to `target` (a 202 is asserted) and follows it; resolves with how it ended. */
async function migrated(
  source: TestCryo,
  target: TestCryo,
  name: string,
  body: Record<string, unknown> = {},
): Promise<Migration> {
  const started = await source.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
    target: target.url,
    targetToken: target.token,
    ...body,
  });
  if (started.status !== 202) throw new Error(`migration refused: ${JSON.stringify(started.body)}`);
  return (await follow(source, started.body.id)).at(-1)!;
}

/** Follows a migration through its server-sent events until it ends; returns every update seen. */
async function follow(cryo: TestCryo, id: string): Promise<Migration[]> {
  const res = await fetch(`${cryo.url}/v1/migrations/${id}/events`, {
    headers: { authorization: `Bearer ${cryo.token}` },
  });
  if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
  const updates: Migration[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (\w+)/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (event === 'update' && data) updates.push(JSON.parse(data) as Migration);
    }
  }
  return updates;
}

test.serial(
  'a running counter moves to host B, whose image it sends first; it goes on there and is gone from A',
  async (t) => {
    const { cryo, containers } = t.context;
    const b = await bringUpSecondHost(t);
    const name = containers.uniqueName('migrate');
    await containers.run({ image: NODE_IMAGE, name, publish: 8080, hostPort: await freePort() });
    await execa('docker', [
      'exec',
      name,
      '/usr/bin/node',
      '-e',
      "require('fs').writeFileSync('/app/moved.txt','written on A')",
    ]);
    const before = await counterAtLeast(name, 10);
    const portOnA = await hostPort(name, 8080);

    const started = await cryo.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
      target: b.cryo.url,
      targetToken: b.cryo.token,
    });
    t.is(started.status, 202, JSON.stringify(started.body));
    t.is(started.body.status, 'running');
    const again = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/migrations`, {
      target: b.cryo.url,
      targetToken: b.cryo.token,
    });
    t.is(again.status, 409, 'a second migration of the same container is refused');
    t.is(again.body.code, ErrorCode.MIGRATION_IN_PROGRESS);

    const updates = await follow(cryo, started.body.id);
    const done = updates.at(-1)!;
    t.is(done.status, 'succeeded', JSON.stringify(done));
    t.deepEqual(
      done.phases.map((p) => `${p.name}:${p.status}`),
      [
        'preflight:done',
        'image:done',
        'precopy:done',
        'checkpoint:done',
        'stream:done',
        'restore:done',
        'finish:done',
      ],
    );
    t.true(updates.length > 3, 'progress streamed as it happened');
    t.true(
      done.downtimeMs! > 0 && done.bytesSent > 1_000_000,
      `downtime ${done.downtimeMs} ms, ${done.bytesSent} bytes`,
    );
    t.is(done.targetContainer?.name, name);
    t.deepEqual((await cryo.api<Migration>('GET', `/v1/migrations/${started.body.id}`)).body, done);

    const onB = await b.host.readCounter(name);
    t.is(onB.bootId, before.bootId, 'the same process runs on B');
    t.true(onB.count >= before.count, `the counter goes on from ${before.count}: ${onB.count}`);
    const moved = await b.host.docker([
      'exec',
      name,
      '/usr/bin/node',
      '-e',
      "process.stdout.write(require('fs').readFileSync('/app/moved.txt','utf8'))",
    ]);
    t.is(moved.stdout, 'written on A');
    await t.notThrowsAsync(
      b.host.docker(['image', 'inspect', '--format', '{{.Id}}', NODE_IMAGE]),
      'the image sent to B keeps its name there',
    );
    const portOnB = await b.host.docker(['port', name, '8080/tcp']);
    t.regex(portOnB.stdout, new RegExp(`:${portOnA}$`, 'm'), 'the same host port is published on B');
    await t.throwsAsync(inspect(name), undefined, 'A no longer has the container');
    t.true(
      (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)).body
        .checkpoints.length === 1,
      'the checkpoint is kept on A',
    );

    // A second container of the same image, moved with the command line, which waits for the outcome: B has the
    // image now, so it is not sent again.
    const second = containers.uniqueName('migrate2');
    await containers.run({ image: NODE_IMAGE, name: second, publish: 8080 });
    await counterAtLeast(second, 3);
    const cli = await cryo.cli([
      'migrate',
      second,
      '--target',
      b.cryo.url,
      '--target-token',
      b.cryo.token,
      '--name',
      'renamed-on-b',
      '--keep-source',
      '--no-disk-pre-copy',
    ]);
    t.is(cli.exitCode, 0, cli.stderr);
    t.regex(cli.stderr, /^preflight: done in \d+ ms\nimage: skipped \(the target has the image\)\n/);
    t.regex(cli.stderr, /\nfinish: done in \d+ ms$/);
    const end = JSON.parse(cli.stdout) as Migration;
    t.is(end.status, 'succeeded', JSON.stringify(end));
    const shown = await cryo.cli(['migrations', end.id]);
    t.deepEqual(JSON.parse(shown.stdout), end, 'cryo migrations <id> shows the same record');
    t.like(
      end.phases.find((p) => p.name === 'image'),
      { status: 'skipped' },
    );
    t.false(
      end.phases.some((p) => p.name === 'precopy'),
      '--no-disk-pre-copy: the files went with the checkpoint',
    );
    t.is((await b.host.readCounter('renamed-on-b')).count >= 3, true);
    t.false((await inspect(second)).State.Running, 'keepSource keeps the source, stopped');
  },
);

/** A shell that numbers lines into a volume and into its root filesystem, keeping one marker file of its count. */
const DISK_WRITER = [
  'sh',
  '-c',
  [
    'dd if=/dev/urandom of=/data/static.bin bs=1M count=48 2>/dev/null',
    'dd if=/dev/urandom of=/rootfs-static.bin bs=1M count=16 2>/dev/null',
    'mkdir -p /srv/app',
    'i=0',
    'while true; do i=$((i+1)); echo $i >> /data/log; echo $i >> /srv/app/log; touch /data/marker-$i; rm -f /data/marker-$((i-1)); usleep 20000; done',
  ].join('; '),
];

async function linesOf(run: (args: string[]) => Promise<{ stdout: string }>, name: string, file: string) {
  return (await run(['exec', name, 'cat', file])).stdout.trim().split('\n').map(Number);
}

test.serial(
  'disk pre-copy: a volume and root-filesystem files written throughout move with only their changes in the downtime',
  async (t) => {
    const { cryo, containers } = t.context;
    const b = await bringUpSecondHost(t);
    await b.host.loadImage(BUSYBOX_IMAGE);
    const name = containers.uniqueName('precopy');
    await containers.run({ image: BUSYBOX_IMAGE, name, volumes: ['/data'], cmd: DISK_WRITER });
    const volume = (await inspect(name)).Mounts.find((m) => m.Destination === '/data')!.Name!;
    t.teardown(() => execa('docker', ['volume', 'rm', '-f', volume], { reject: false }));

    for (let i = 0; i < 100 && (await linesOf(onA, name, '/data/log').catch(() => [])).length < 25; i++)
      await new Promise((r) => setTimeout(r, 100));
    const sums = (await onA(['exec', name, 'sha256sum', '/data/static.bin', '/rootfs-static.bin'])).stdout;

    const done = await migrated(cryo, b.cryo, name);
    t.is(done.status, 'succeeded', JSON.stringify(done));
    t.like(
      done.phases.find((p) => p.name === 'precopy'),
      { status: 'done' },
    );
    const seedBytes = done.precopy!.bytes;
    t.true(seedBytes > 64 * 1024 * 1024, `the seed carries the files: ${seedBytes} bytes`);
    const changesBytes = done.bytesTotal! - seedBytes;
    t.true(
      changesBytes < 16 * 1024 * 1024,
      `the checkpoint in the downtime carries only what changed since: ${changesBytes} bytes`,
    );

    const onB = (args: string[]) => b.host.docker(args);
    t.is((await onB(['exec', name, 'sha256sum', '/data/static.bin', '/rootfs-static.bin'])).stdout, sums);
    await new Promise((r) => setTimeout(r, 500));
    for (const file of ['/data/log', '/srv/app/log']) {
      const lines = await linesOf(onB, name, file);
      t.true(
        lines.every((n, i) => n === i + 1),
        `${file} counts on without a gap or a repeat: ${lines.length} lines`,
      );
      t.true(lines.length > 25, `${file} goes on past what A wrote before the migration`);
    }
    // The marker of the seed's time was removed on A before the freeze: it must not come back on B. A listing
    // that races the workload's touch and rm (readdir is no snapshot) may see no marker at all: read again.
    const { markers, last } = await eventually(
      async () => {
        const out = (
          await onB(['exec', name, 'sh', '-c', 'ls /data | grep marker-; echo; tail -n 1 /data/log'])
        ).stdout;
        const [listed, tail] = out.split('\n\n');
        const read = { markers: (listed ?? '').trim().split('\n').filter(Boolean), last: Number(tail) };
        return read.markers.length > 0 && Number.isInteger(read.last) ? read : undefined;
      },
      { what: `a marker and the count in ${name} on B`, timeoutMs: 5_000, intervalMs: 100 },
    );
    t.true(
      markers.every((m) => Number(m.slice('marker-'.length)) >= last - 3),
      `only the newest marker is there: ${markers.join(' ')} (count ${last})`,
    );
    t.deepEqual(
      (await b.cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
      [],
      'B keeps neither part of the pre-copy',
    );
    t.deepEqual(
      (
        await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)
      ).body.checkpoints.map((c) => c.diskPreCopy?.part),
      ['changes'],
      'A keeps the changes checkpoint (it restores in place), not the seed',
    );
  },
);

test.serial('when B cannot restore, the migration rolls back and the counter runs on A again', async (t) => {
  const { cryo, containers } = t.context;
  const b = await bringUpSecondHost(t, { brokenCriu: true });
  await b.host.loadImage(NODE_IMAGE);
  const name = containers.uniqueName('rollback');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 10);
  const startedAt = (await inspect(name)).State.StartedAt;

  const started = await cryo.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
    target: b.cryo.url,
    targetToken: b.cryo.token,
  });
  t.is(started.status, 202, JSON.stringify(started.body));
  const done = (await follow(cryo, started.body.id)).at(-1)!;
  t.is(done.status, 'rolled_back', JSON.stringify(done));
  // Held frozen while B tried, the source was thawed where it froze: Docker never saw it stop or start.
  t.is((await inspect(name)).State.StartedAt, startedAt);
  t.is(done.error?.phase, 'restore');
  t.regex(done.error?.message ?? '', /CRIU|criu/);
  t.like(done.phases.at(-1), { name: 'rollback', status: 'done' });

  const after = await readCounter(name);
  t.is(after.bootId, before.bootId, 'the same process runs on A again');
  t.true(after.count >= before.count);
  t.true((await inspect(name)).State.Running);
  t.is((await b.host.docker(['ps', '-aq'])).stdout.trim(), '', 'nothing half-restored on B');
  t.deepEqual(
    (await b.cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
    [],
    "B's copy is removed",
  );
  t.is(
    (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', `/v1/checkpoints?container=${name}`)).body
      .checkpoints.length,
    1,
    'the checkpoint is kept',
  );
});

test.serial(
  'a wrong token, an unreachable target and a stopped container get clear errors, and nothing moves',
  async (t) => {
    const { cryo, containers } = t.context;
    const name = containers.uniqueName('stay');
    await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
    const before = await counterAtLeast(name, 3);
    const other = await TestCryo.start();
    t.teardown(() => other.stop());

    const wrong = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/migrations`, {
      target: other.url,
      targetToken: 'x'.repeat(32),
    });
    t.is(wrong.status, 400, JSON.stringify(wrong.body));
    t.is(wrong.body.code, ErrorCode.TARGET_UNAUTHORIZED);
    t.truthy(wrong.body.hint);

    const unreachable = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/migrations`, {
      target: 'http://127.0.0.1:9',
      targetToken: 'x'.repeat(32),
    });
    t.is(unreachable.status, 502, JSON.stringify(unreachable.body));
    t.is(unreachable.body.code, ErrorCode.TARGET_UNREACHABLE);

    const badUrl = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/migrations`, {
      target: 'file:///etc/passwd',
      targetToken: 'x'.repeat(32),
    });
    t.is(badUrl.status, 400);
    t.is(badUrl.body.code, ErrorCode.VALIDATION_FAILED);

    const after = await readCounter(name);
    t.is(after.bootId, before.bootId);
    t.true((await inspect(name)).State.Running, 'the container never stopped');
    const failed = (
      await cryo.api<{ migrations: Migration[] }>('GET', '/v1/migrations')
    ).body.migrations.filter((m) => m.container.name === name);
    t.deepEqual(
      failed.map((m) => [m.status, m.error?.code]),
      [
        ['failed', ErrorCode.TARGET_UNAUTHORIZED],
        ['failed', ErrorCode.TARGET_UNREACHABLE],
      ],
    );
    await cryo.restart();
    const kept = (await cryo.api<{ migrations: Migration[] }>('GET', '/v1/migrations')).body.migrations;
    t.deepEqual(
      kept.filter((m) => m.container.name === name),
      failed,
      'the migration history survives a restart',
    );

    // The command line says the same, on stderr, and exits 1.
    const cli = await cryo.cli(['migrate', name, '--target', other.url, '--target-token', 'x'.repeat(32)]);
    t.is(cli.exitCode, 1);
    t.regex(cli.stderr, /^cryo: TARGET_UNAUTHORIZED: .+\nhint: .+/);
    t.true((await inspect(name)).State.Running);
  },
);

interface MemoryReport {
  sha256: string;
  initial: string;
}

/** The memory workload's report, from inside its container (a host's ports may be in its own namespace). */
async function memoryReport(docker: (args: string[]) => Promise<{ stdout: string }>, name: string) {
  const script =
    "fetch('http://127.0.0.1:8080/').then(r=>r.text()).then(t=>process.stdout.write(t)).catch(()=>process.exit(1))";
  for (let i = 0; ; i++) {
    const res = await docker(['exec', name, '/usr/bin/node', '-e', script]).catch((err: Error) => err);
    if (!(res instanceof Error)) return JSON.parse(res.stdout) as MemoryReport;
    if (i > 200) throw res;
    await new Promise((r) => setTimeout(r, 300));
  }
}

const onA = (args: string[]) => execa('docker', args);

/**
 * Host B with `image`, and a source cryo of its own whose page server B reaches (B's dockerd, and so its lazy-pages
 * daemon, reaches A over the veth pair).
 */
async function postCopyHosts(
  t: ExecutionContext<CryoSuiteContext>,
  image: string,
  cryo: TestCryoOptions = {},
): Promise<{ b: Awaited<ReturnType<typeof bringUpSecondHost>>; source: TestCryo }> {
  const b = await bringUpSecondHost(t, { cryo });
  await b.host.loadImage(image);
  const source = await TestCryo.start({ pageServerAddress: b.host.hostAddress });
  t.teardown(() => source.stop());
  return { b, source };
}

/** The memory workload (MEMORY_MIB of checksummed memory) on this host, and its first report. */
async function runMemoryWorkload(
  containers: CryoSuiteContext['containers'],
  label: string,
  mib: number,
  restart?: string,
): Promise<{ name: string; before: MemoryReport }> {
  const name = containers.uniqueName(label);
  await containers.run({
    image: NODE_IMAGE,
    name,
    env: { MEMORY_MIB: String(mib) },
    cmd: ['/usr/bin/node', '/app/memory.js'],
    ...(restart ? { restart } : {}),
  });
  return { name, before: await memoryReport(onA, name) };
}

test.serial(
  'post-copy: the memory workload runs on B at once, its pages follow from the frozen source, and its checksum there is the one it had on A',
  async (t) => {
    const { containers } = t.context;
    const { b, source } = await postCopyHosts(t, NODE_IMAGE);
    const { name, before } = await runMemoryWorkload(containers, 'postcopy', 96, 'unless-stopped');
    t.is(before.sha256, before.initial);

    const done = await migrated(source, b.cryo, name, { strategy: 'post-copy' });
    t.is(done.status, 'succeeded', JSON.stringify(done));
    t.deepEqual(done.strategy, { requested: 'post-copy', used: 'post-copy' });
    t.deepEqual(
      done.phases.map((p) => p.name),
      ['preflight', 'image', 'precopy', 'checkpoint', 'stream', 'restore', 'pages', 'finish'],
    );
    t.true(
      done.bytesSent < 96 * 1024 * 1024,
      `only what is not memory is streamed (${done.bytesSent} bytes)`,
    );

    const after = await memoryReport((args) => b.host.docker(args), name);
    t.is(after.initial, before.initial, 'the same process');
    t.is(after.sha256, before.initial, 'every page arrived intact');
    const onB = JSON.parse((await b.host.docker(['inspect', name])).stdout) as [
      { HostConfig: { RestartPolicy: { Name: string } } },
    ];
    t.is(onB[0].HostConfig.RestartPolicy.Name, 'unless-stopped', 'its restart policy, once every page is in');
    t.is((await onA(['ps', '-aq', '--filter', `name=^${name}$`])).stdout.trim(), '', 'gone from A');
    for (const cryo of [source, b.cryo])
      t.deepEqual(
        (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
        [],
        'no copy without its pages is kept',
      );
  },
);

test.serial(
  'post-copy of Redis: its keys and its dataset digest are on B as they were on A, and it takes writes there',
  async (t) => {
    const { containers } = t.context;
    const { b, source } = await postCopyHosts(t, REDIS_IMAGE);
    const name = containers.uniqueName('redis');
    await containers.run({ image: REDIS_IMAGE, name });
    const cliOnA = async (...args: string[]) =>
      (await onA(['exec', name, 'redis-cli', ...args])).stdout.trim();
    for (let i = 0; i < 50 && (await cliOnA('PING').catch(() => '')) !== 'PONG'; i++)
      await new Promise((r) => setTimeout(r, 100));
    // About 60 MB of values, and 100 keys of its own.
    t.is(await cliOnA('DEBUG', 'POPULATE', '300000', 'bulk', '128'), 'OK');
    for (let i = 0; i < 100; i++) await cliOnA('SET', `user:${i}`, `value-${i}`);
    const digest = await cliOnA('DEBUG', 'DIGEST');
    const size = await cliOnA('DBSIZE');
    t.is(size, '300100');

    const done = await migrated(source, b.cryo, name, { strategy: 'post-copy' });
    t.is(done.status, 'succeeded', JSON.stringify(done));
    t.like(done.strategy, { used: 'post-copy' });
    t.like(
      done.phases.find((p) => p.name === 'pages'),
      { status: 'done' },
    );

    const cliOnB = async (...args: string[]) =>
      (await b.host.docker(['exec', name, 'redis-cli', ...args])).stdout.trim();
    t.is(await cliOnB('DEBUG', 'DIGEST'), digest, 'the whole dataset, as it was on A');
    t.is(await cliOnB('DBSIZE'), size);
    t.is(await cliOnB('GET', 'user:42'), 'value-42');
    t.is(await cliOnB('INCR', 'after-migration'), '1', 'it takes writes on B');
    t.is((await onA(['ps', '-aq', '--filter', `name=^${name}$`])).stdout.trim(), '', 'gone from A');
  },
);

test.serial(
  'auto falls back to stop-and-copy, and says why, where the target has post-copy off; post-copy asked there is refused',
  async (t) => {
    const { cryo, containers } = t.context;
    const b = await bringUpSecondHost(t, { cryo: { postCopy: 'off' } });
    await b.host.loadImage(NODE_IMAGE);
    const name = containers.uniqueName('fallback');
    await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
    const before = await counterAtLeast(name, 3);

    const refused = await cryo.api<ErrorBody>('POST', `/v1/containers/${name}/migrations`, {
      target: b.cryo.url,
      targetToken: b.cryo.token,
      strategy: 'post-copy',
    });
    t.is(refused.status, 409);
    t.is(refused.body.code, ErrorCode.POST_COPY_UNAVAILABLE);
    t.regex(refused.body.message, /the target: post-copy is turned off there|CRYO_POST_COPY=off/);
    t.true((await inspect(name)).State.Running, 'nothing was frozen');

    const started = await cryo.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
      target: b.cryo.url,
      targetToken: b.cryo.token,
      strategy: 'auto',
    });
    t.is(started.status, 202, JSON.stringify(started.body));
    const done = (await follow(cryo, started.body.id)).at(-1)!;
    t.is(done.status, 'succeeded', JSON.stringify(done));
    t.like(done.strategy, { requested: 'auto', used: 'stop-and-copy' });
    t.regex(done.strategy?.fallback ?? '', /CRYO_POST_COPY=off/);
    const now = await b.host.readCounter(name);
    t.is(now.bootId, before.bootId);
    t.true(now.count >= before.count);
  },
);

/** Starts a post-copy migration of a 128 MiB memory workload over a 40 Mbit/s link; resolves once its pages flow. */
async function postCopyUnderWay(
  t: ExecutionContext<CryoSuiteContext>,
  label: string,
): Promise<{
  b: Awaited<ReturnType<typeof bringUpSecondHost>>;
  source: TestCryo;
  name: string;
  before: MemoryReport;
  id: string;
}> {
  const { b, source } = await postCopyHosts(t, NODE_IMAGE, { lazyPagesTimeoutSeconds: 30 });
  const { name, before } = await runMemoryWorkload(t.context.containers, label, 128);
  // 128 MiB at 40 Mbit/s: the pages take about half a minute, time to break something while they flow.
  await b.host.limitRate(40);
  const started = await source.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
    target: b.cryo.url,
    targetToken: b.cryo.token,
    strategy: 'post-copy',
  });
  if (started.status !== 202) throw new Error(JSON.stringify(started.body));
  for (let i = 0; ; i++) {
    const m = await source.api<Migration>('GET', `/v1/migrations/${started.body.id}`);
    if (m.body.phases.at(-1)?.name === 'pages') break;
    if (m.body.status !== 'running' || i > 600)
      throw new Error(`never reached pages: ${JSON.stringify(m.body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1_000));
  return { b, source, name, before, id: started.body.id };
}

/** After a post-copy that failed mid-transfer: the workload runs on A, where it froze, and nowhere on B. */
async function ranOnAOnly(
  t: ExecutionContext<CryoSuiteContext>,
  run: Awaited<ReturnType<typeof postCopyUnderWay>>,
): Promise<void> {
  const done = (await follow(run.source, run.id)).at(-1)!;
  t.is(done.status, 'rolled_back', JSON.stringify(done));
  t.is(done.error?.phase, 'pages');
  const after = await memoryReport(onA, run.name);
  t.is(after.initial, run.before.initial, 'the same process, on A');
  t.is(after.sha256, run.before.initial, 'with all its memory');
  const onB = await run.b.host.docker(['ps', '-q', '--filter', `name=^${run.name}$`]);
  t.is(onB.stdout.trim(), '', 'nothing runs on B: its container was killed for want of pages');
}

test.serial(
  'post-copy: a page server killed mid-transfer leaves the workload on A, where it froze, and nothing running on B',
  async (t) => {
    const run = await postCopyUnderWay(t, 'pskill');
    const criu = await execa('pgrep', ['-f', 'criu: dump'], { reject: false });
    t.not(criu.stdout.trim(), '', "A's page server (CRIU's lazy dump) is serving");
    await execa('kill', ['-9', ...criu.stdout.trim().split('\n')]);
    await ranOnAOnly(t, run);
  },
);

test.serial(
  'post-copy: a link that goes down mid-transfer leaves the workload on A, where it froze, and nothing running on B',
  async (t) => {
    const run = await postCopyUnderWay(t, 'linkdown');
    await run.b.host.link(false);
    // B gives up on its pages after its lazyPagesTimeoutSeconds (30 s) and kills its container; then A thaws.
    await ranOnAOnly(t, run);
  },
);

test.serial(
  'post-copy: a source cryo killed mid-transfer settles after its restart: the workload runs on B with every page, and only there',
  async (t) => {
    const { containers } = t.context;
    const b = await bringUpSecondHost(t);
    await b.host.loadImage(NODE_IMAGE);
    const env = { CRYO_PAGE_SERVER_ADDRESS: b.host.hostAddress };
    const first = await CryoProcess.start(env);
    let source = first;
    t.teardown(() => source.stop());
    const { name, before } = await runMemoryWorkload(containers, 'pcrash', 128);
    await b.host.limitRate(40);
    const started = await source.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
      target: b.cryo.url,
      targetToken: b.cryo.token,
      strategy: 'post-copy',
    });
    for (let i = 0; ; i++) {
      const m = await source.api<Migration>('GET', `/v1/migrations/${started.id}`);
      if (m.phases.at(-1)?.name === 'pages') break;
      if (m.status !== 'running' || i > 600) throw new Error(`never reached pages: ${JSON.stringify(m)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // CRIU's page server is not cryo's child to die with it: the pages go on flowing meanwhile.
    await first.crash();
    source = await CryoProcess.start(env, { work: first.work, token: first.token, url: first.url });
    let done: Migration;
    for (let i = 0; ; i++) {
      done = await source.api<Migration>('GET', `/v1/migrations/${started.id}`);
      if (done.status !== 'running') break;
      if (i > 1200) throw new Error(`did not settle: ${JSON.stringify(done)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    t.is(done.status, 'succeeded', JSON.stringify(done));
    const after = await memoryReport((args) => b.host.docker(args), name);
    t.is(after.initial, before.initial);
    t.is(after.sha256, before.initial, 'every page arrived intact');
    t.is((await onA(['ps', '-aq', '--filter', `name=^${name}$`])).stdout.trim(), '', 'gone from A');
  },
);

test.serial(
  'post-copy: a target cryo killed mid-transfer leaves the pages flowing; once it is back the source learns they are in, and the workload runs on B only, with its restart policy',
  async (t) => {
    const { containers } = t.context;
    const host = await SecondHost.start();
    t.teardown(() => host.stop());
    await host.loadImage(NODE_IMAGE);
    const env = {
      CRYO_DOCKER_SOCKET: host.socket,
      CRYO_CONTAINERD_SOCKET: host.containerdSocket,
      CRYO_DOCKER_EXEC_ROOT: host.execRoot,
    };
    const first = await CryoProcess.start(env);
    let target = first;
    t.teardown(() => target.stop());
    const source = await TestCryo.start({ pageServerAddress: host.hostAddress });
    t.teardown(() => source.stop());
    const { name, before } = await runMemoryWorkload(containers, 'tcrash', 128, 'unless-stopped');
    await host.limitRate(40);
    const started = await source.api<Migration>('POST', `/v1/containers/${name}/migrations`, {
      target: target.url,
      targetToken: target.token,
      strategy: 'post-copy',
    });
    t.is(started.status, 202, JSON.stringify(started.body));
    for (let i = 0; ; i++) {
      const m = (await source.api<Migration>('GET', `/v1/migrations/${started.body.id}`)).body;
      if (m.phases.at(-1)?.name === 'pages') break;
      if (m.status !== 'running' || i > 600) throw new Error(`never reached pages: ${JSON.stringify(m)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // B's lazy-pages daemon is its runtime's child, not cryo's: the pages go on flowing meanwhile.
    await first.crash();
    await new Promise((r) => setTimeout(r, 2_000));
    target = await CryoProcess.start(env, { work: first.work, token: first.token, url: first.url });

    const done = (await follow(source, started.body.id)).at(-1)!;
    t.is(done.status, 'succeeded', JSON.stringify(done));
    const after = await memoryReport((args) => host.docker(args), name);
    t.is(after.initial, before.initial, 'the same process, on B');
    t.is(after.sha256, before.initial, 'every page arrived intact');
    t.is((await onA(['ps', '-aq', '--filter', `name=^${name}$`])).stdout.trim(), '', 'gone from A');
    let policy = '';
    for (let i = 0; i < 100 && policy !== 'unless-stopped'; i++) {
      policy = (
        await host.docker(['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', name])
      ).stdout.trim();
      await new Promise((r) => setTimeout(r, 200));
    }
    t.is(policy, 'unless-stopped', 'the restarted cryo put the restart policy back once every page was in');
  },
);
