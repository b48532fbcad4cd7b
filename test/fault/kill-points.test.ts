import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { execa } from 'execa';
import fc from 'fast-check';
import { CgroupFreezer } from '../../src/adapters/docker/cgroup-freezer.js';
import { DEFAULT_RUNTIME_STATE_DIR } from '../../src/defaults.js';
import {
  TestContainers,
  counterAtLeast,
  readCounter,
  readJson,
  sleep,
  type CounterReading,
} from '../../harness/containers.js';
import { CryoProcess, callApi } from '../../harness/cryo-process.js';
import { SecondHost } from '../../harness/second-host.js';
import { NODE_IMAGE, requirePrerequisites } from '../../harness/prerequisites.js';
import { TestRegistry } from '../../harness/registry.js';

// The fault-injection harness: cryo runs as a process of its own and is killed with SIGKILL at a seeded random
// moment of one operation after another; after each kill it starts again on the same data directory, and every
// invariant of docs/reliability.md is checked. CRYO_FAULT_POINTS kill points (default 50), CRYO_FAULT_SEED
// replays a run, CRYO_FAULT_ONLY=<text> keeps the operations whose name holds it.
const POINTS = Number(process.env.CRYO_FAULT_POINTS ?? 50);
const SEED = Number(process.env.CRYO_FAULT_SEED ?? Date.now() % 2 ** 31);
/** Only the operations whose name holds this text (to chase one kind of kill point). */
const ONLY = process.env.CRYO_FAULT_ONLY;
const RUNC_CONF = '/etc/criu/runc.conf';
const BIG_MIB = 256;

interface Op {
  name: string;
  /** Whose cryo the kill hits: this host's (the default) or the migration target's. */
  victim?: 'target';
  /** How long the operation takes here (measured before the kills): the kill lands uniformly in [0, windowMs]. */
  windowMs: number;
  /** Puts what the operation needs in place, outside the kill window. */
  prepare: () => Promise<void>;
  run: () => Promise<unknown>;
}

interface MigrationRecord {
  id: string;
  status: string;
  error?: { phase: string; code: string };
}

interface Checkpoint {
  id: string;
  sizeBytes?: number;
  status?: string;
  container?: { id: string; name: string };
  chain?: { parent?: string; depth: number };
}

test('SIGKILL at seeded random points of every operation leaves no invariant broken', async (t) => {
  t.timeout(60 * 60_000);
  await requirePrerequisites();
  t.log(`seed ${SEED} (CRYO_FAULT_SEED replays), ${POINTS} kill points (CRYO_FAULT_POINTS)`);
  const random = fc
    .sample(fc.noBias(fc.integer({ min: 0, max: 1_000_000 })), { seed: SEED, numRuns: POINTS })
    .map((n) => n / 1_000_000);
  const containers = new TestContainers();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'cryo-fault-'));
  // Migrations go to a second host on this machine: its own dockerd, and its own cryo, killed in turn.
  const hostB = await SecondHost.start();
  const envB = {
    CRYO_DOCKER_SOCKET: hostB.socket,
    CRYO_CONTAINERD_SOCKET: hostB.containerdSocket,
    CRYO_DOCKER_EXEC_ROOT: hostB.execRoot,
  };
  // B's lazy-pages daemon reaches A's page server over the veth pair (post-copy migrations).
  const envA = { CRYO_PAGE_SERVER_ADDRESS: hostB.hostAddress };
  const live = { cryo: await CryoProcess.start(envA), target: await CryoProcess.start(envB) };
  // Pushes and pulls go to a registry on loopback.
  const registry = await TestRegistry.start();
  // Each push goes to a repository of its own, so that it sends its blobs (a repository has none of them yet).
  let pushes = 0;
  let pushedRef = '';
  const pulledRef = `${registry.address}/fault/counter:latest`;
  t.teardown(async () => {
    await registry.stop();
    await containers.removeAll();
    await live.cryo.stop();
    await live.target.stop();
    await hostB.stop();
    await rm(scratch, { recursive: true, force: true });
  });
  await hostB.loadImage(NODE_IMAGE);
  const api = <T = Record<string, unknown>>(method: string, url: string, body?: unknown) =>
    live.cryo.api<T>(method, url, body);
  const docker = async (...args: string[]) => (await execa('docker', args)).stdout.trim();

  // The workloads: a counter with a restart policy, one with a host file bind-mounted (its restores need CRIU
  // options), and a 256 MiB one whose archive streams long enough for a kill to land mid-stream.
  const counter = containers.uniqueName('fault-counter');
  await containers.run({ image: NODE_IMAGE, name: counter, publish: 8080, restart: 'always' });
  const hostFile = path.join(scratch, 'app.conf');
  await writeFile(hostFile, 'from the host\n');
  const bound = containers.uniqueName('fault-bound');
  await containers.run({
    image: NODE_IMAGE,
    name: bound,
    publish: 8080,
    volumes: [`${hostFile}:/etc/app.conf:ro`],
  });
  const big = containers.uniqueName('fault-big');
  await execa('docker', [
    'run',
    '-d',
    '--name',
    big,
    '-p',
    '127.0.0.1::8080',
    '-e',
    `MEMORY_MIB=${BIG_MIB}`,
    NODE_IMAGE,
    '/usr/bin/node',
    '/app/memory.js',
  ]);
  containers.track(big);
  await counterAtLeast(counter, 2);
  await counterAtLeast(bound, 2);
  // The workload answers once it has filled its memory.
  await readJson(big, 600_000, 8080, 120_000);
  const bigCheckpoint = await api<Checkpoint>('POST', `/v1/containers/${big}/checkpoints`, {
    leaveRunning: true,
  });
  t.true(
    (bigCheckpoint.sizeBytes ?? 0) >= BIG_MIB * 1024 * 1024,
    `the export's checkpoint holds ${bigCheckpoint.sizeBytes} bytes`,
  );
  const smallArchive = path.join(scratch, 'small.tar');
  const policyOf = (ref: string) => docker('inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', ref);
  const runcConfBefore = await readFile(RUNC_CONF, 'utf8').catch(() => null);
  const ctrdBefore = new Set((await readdir('/tmp')).filter((d) => d.startsWith('ctrd-checkpoint')));
  const schedule = await api<{ id: string }>('POST', '/v1/schedules', {
    container: counter,
    cron: '0 0 1 1 *',
    leaveRunning: true,
    retain: { last: 2 },
  });

  const running = async (ref: string) =>
    (await docker('inspect', '-f', '{{.State.Running}}', ref)) === 'true';
  const ensureRunning = async (ref: string) => {
    if (!(await running(ref))) await docker('start', ref);
  };
  /** A stop-mode checkpoint of `ref`, taken outside the kill window; `ref` is stopped afterwards. */
  const stopCheckpoint = async (ref: string, body: Record<string, unknown> = {}) => {
    await ensureRunning(ref);
    await counterAtLeast(ref, 1);
    return api<Checkpoint>('POST', `/v1/containers/${ref}/checkpoints`, body);
  };
  // The migrated counter: on this host before each migration, on exactly one host after it, counting on.
  const mig = containers.uniqueName('fault-mig');
  const onHost = async (docker: (args: string[]) => Promise<{ stdout: string }>) =>
    (
      await docker(['inspect', '-f', '{{.State.Running}}', mig]).catch(() => ({ stdout: '' }))
    ).stdout.trim() === 'true';
  const onA = () => onHost((args) => execa('docker', args));
  const onB = () => onHost((args) => hostB.docker(args));
  const migrated: { before?: CounterReading } = {};
  const prepareMigration = async () => {
    if (!(await onA())) {
      await hostB.docker(['rm', '-f', mig]).catch(() => undefined);
      await execa('docker', ['rm', '-f', mig], { reject: false });
      await containers.run({ image: NODE_IMAGE, name: mig, publish: 8080 });
    }
    migrated.before = await counterAtLeast(mig, 1);
  };
  /** Waits until no migration of this host's cryo is running (a restarted one settles in the background). */
  const migrationsSettled = async () => {
    const deadline = Date.now() + 180_000;
    for (;;) {
      const { migrations } = await api<{ migrations: MigrationRecord[] }>('GET', '/v1/migrations');
      if (!migrations.some((m) => m.status === 'running')) return migrations;
      if (Date.now() > deadline) throw new Error('a migration is still running 180 s after the restart');
      await sleep(250);
    }
  };
  const migrate = async (strategy: 'stop-and-copy' | 'post-copy') => {
    await api('POST', `/v1/containers/${mig}/migrations`, {
      target: live.target.url,
      targetToken: live.target.token,
      strategy,
    });
    await migrationsSettled();
  };

  let restoreOf: Checkpoint | undefined;
  let chainLevels: Checkpoint[] = [];
  const ops: Op[] = [
    {
      name: 'stop-mode checkpoint',
      windowMs: 1500,
      prepare: () => ensureRunning(counter),
      run: () => api('POST', `/v1/containers/${counter}/checkpoints`, {}),
    },
    {
      name: 'leave-running checkpoint',
      windowMs: 1200,
      prepare: () => ensureRunning(counter),
      run: () => api('POST', `/v1/containers/${counter}/checkpoints`, { leaveRunning: true }),
    },
    {
      name: 'restore in place',
      windowMs: 1500,
      prepare: async () => {
        restoreOf = await stopCheckpoint(counter);
      },
      run: () => api('POST', `/v1/checkpoints/${restoreOf!.id}/restore`),
    },
    {
      name: 'restore as a new container',
      windowMs: 2000,
      prepare: async () => {
        restoreOf = await api<Checkpoint>('POST', `/v1/containers/${counter}/checkpoints`, {
          leaveRunning: true,
        });
      },
      run: () =>
        api('POST', `/v1/checkpoints/${restoreOf!.id}/restore`, { name: containers.uniqueName('fault-new') }),
    },
    {
      name: 'restore with CRIU options (fileLocks, a bind-mounted host file)',
      windowMs: 2000,
      prepare: async () => {
        restoreOf = await stopCheckpoint(bound, { fileLocks: true });
      },
      run: () => api('POST', `/v1/checkpoints/${restoreOf!.id}/restore`),
    },
    {
      name: `export of a ${BIG_MIB} MiB checkpoint`,
      windowMs: 1500,
      prepare: async () => undefined,
      run: async () => {
        const res = await fetch(`${live.cryo.url}/v1/checkpoints/${bigCheckpoint.id}/archive`, {
          headers: { authorization: `Bearer ${live.cryo.token}` },
        });
        for await (const chunk of res.body ?? []) void chunk;
      },
    },
    {
      name: 'import',
      windowMs: 800,
      prepare: async () => {
        const cp = await api<Checkpoint>('POST', `/v1/containers/${counter}/checkpoints`, {
          leaveRunning: true,
        });
        const res = await fetch(`${live.cryo.url}/v1/checkpoints/${cp.id}/archive`, {
          headers: { authorization: `Bearer ${live.cryo.token}` },
        });
        await writeFile(smallArchive, Buffer.from(await res.arrayBuffer()));
        await api('DELETE', `/v1/checkpoints/${cp.id}`);
      },
      run: () =>
        fetch(`${live.cryo.url}/v1/checkpoints`, {
          method: 'POST',
          headers: { authorization: `Bearer ${live.cryo.token}`, 'content-type': 'application/x-tar' },
          body: Readable.toWeb(createReadStream(smallArchive)) as ReadableStream,
          duplex: 'half',
        } as RequestInit),
    },
    {
      name: `push of a ${BIG_MIB} MiB checkpoint to a registry`,
      windowMs: 3000,
      prepare: async () => {
        pushedRef = `${registry.address}/fault/big-${++pushes}:latest`;
      },
      run: () => api('POST', `/v1/checkpoints/${bigCheckpoint.id}/push`, { reference: pushedRef }),
    },
    {
      name: 'pull from a registry',
      windowMs: 800,
      prepare: async () => {
        // A checkpoint that is in the registry and not here, so that the pull has work to do.
        const cp = await api<Checkpoint & { name: string }>('POST', `/v1/containers/${counter}/checkpoints`, {
          leaveRunning: true,
          name: 'fault-pulled',
        });
        await api('POST', `/v1/checkpoints/${cp.id}/push`, { reference: pulledRef });
        await api('DELETE', `/v1/checkpoints/${cp.id}`);
      },
      run: () => api('POST', '/v1/checkpoints/pull', { reference: pulledRef }),
    },
    {
      name: 'chain rebase (the middle level of three deleted)',
      windowMs: 800,
      prepare: async () => {
        await ensureRunning(counter);
        chainLevels = [];
        for (let i = 0; i < 3; i++)
          chainLevels.push(
            await api<Checkpoint>('POST', `/v1/containers/${counter}/checkpoints`, {
              leaveRunning: true,
              parent: chainLevels.at(-1)?.id,
              incremental: true,
            }),
          );
      },
      run: () => api('DELETE', `/v1/checkpoints/${chainLevels[1]!.id}`),
    },
    {
      // Schedules are incremental: its retention (the last 2) deletes the base of a chain, which rebases.
      name: 'scheduled run, with its retention pass',
      windowMs: 1500,
      prepare: () => ensureRunning(counter),
      run: () => api('POST', `/v1/schedules/${schedule.id}/run`),
    },
    ...(['stop-and-copy', 'post-copy'] as const).flatMap((strategy): Op[] => {
      const label = strategy === 'post-copy' ? 'post-copy migration' : 'migration';
      const run = () => migrate(strategy);
      return [
        { name: `${label}, killed on the source`, windowMs: 4000, prepare: prepareMigration, run },
        {
          name: `${label}, killed on the target`,
          victim: 'target',
          windowMs: 4000,
          prepare: prepareMigration,
          run,
        },
      ];
    }),
  ];

  if (ONLY) ops.splice(0, ops.length, ...ops.filter((op) => op.name.includes(ONLY)));
  t.true(ops.length > 0, `CRYO_FAULT_ONLY=${ONLY ?? ''} matches no operation`);
  // Each operation's kill window is its own duration, measured once here without a kill.
  for (const op of ops) {
    await op.prepare();
    const started = Date.now();
    await op.run();
    op.windowMs = Math.max(50, Date.now() - started);
  }
  t.log(`kill windows: ${ops.map((op) => `${op.name} ${op.windowMs} ms`).join(', ')}`);
  const violations: string[] = [];
  let killedMidway = 0;
  const freezer = new CgroupFreezer();
  for (let point = 0; point < POINTS; point++) {
    const op = ops[point % ops.length]!;
    await op.prepare();
    const delay = Math.round(random[point]! * op.windowMs);
    let ended = false;
    const pending = op
      .run()
      .catch(() => undefined)
      .finally(() => {
        ended = true;
      });
    await sleep(delay);
    const midway = !ended;
    if (midway) killedMidway++;
    if (op.victim === 'target') {
      await live.target.crash();
      live.target = await CryoProcess.start(envB, {
        work: live.target.work,
        token: live.target.token,
        url: live.target.url,
      });
      await pending;
    } else {
      await live.cryo.crash();
      await pending;
      live.cryo = await CryoProcess.start(envA, { work: live.cryo.work, token: live.cryo.token });
    }
    const broken: string[] = [];
    const check = (ok: boolean, what: string) => {
      if (!ok) broken.push(what);
    };
    // A restarted source settles an interrupted migration in the background: the checks look at where it ends.
    const migrations = await migrationsSettled().catch((err: Error) => {
      broken.push(err.message);
      return [] as MigrationRecord[];
    });

    // No container paused or frozen; restart policies and runc.conf as they were.
    for (const ref of [counter, bound, big]) {
      const [paused, pid] = (await docker('inspect', '-f', '{{.State.Paused}} {{.State.Pid}}', ref)).split(
        ' ',
      );
      check(paused === 'false', `${ref} is paused`);
      check(!(await freezer.isFrozen(Number(pid))), `${ref} is frozen`);
    }
    check(
      (await policyOf(counter)) === 'always',
      `${counter}'s restart policy is ${await policyOf(counter)}`,
    );
    check((await readFile(RUNC_CONF, 'utf8').catch(() => null)) === runcConfBefore, 'runc.conf changed');
    // Nothing half-done left: staging, Docker's checkpoint links, containerd's copies, runtime markers, replacements.
    const staging = await readdir(path.join(live.cryo.work, 'data', 'staging')).catch(() => [] as string[]);
    check(staging.length === 0, `staging holds ${staging.join(', ')}`);
    const root = await docker('info', '-f', '{{.DockerRootDir}}');
    for (const ref of [counter, bound, big]) {
      const id = await docker('inspect', '-f', '{{.Id}}', ref);
      const links = await readdir(path.join(root, 'containers', id, 'checkpoints')).catch(
        () => [] as string[],
      );
      check(!links.some((l) => l.startsWith('cryo-')), `a cryo link is left for ${ref}`);
    }
    const ctrd = (await readdir('/tmp')).filter((d) => d.startsWith('ctrd-checkpoint') && !ctrdBefore.has(d));
    check(ctrd.length === 0, `containerd copies left: ${ctrd.join(', ')}`);
    // Markers of this daemon's containers (another engine on this machine may be restoring meanwhile).
    const ours = new Set([
      ...(await docker('ps', '-aq', '--no-trunc')).split('\n'),
      ...(await hostB.docker(['ps', '-aq', '--no-trunc'])).stdout.split('\n'),
    ]);
    const markers = (await readdir(DEFAULT_RUNTIME_STATE_DIR).catch(() => [] as string[])).filter((m) =>
      ours.has(m),
    );
    check(markers.length === 0, `runtime markers left: ${markers.join(', ')}`);
    const replacements = await docker('ps', '-a', '--filter', 'name=cryo-restore', '--format', '{{.Names}}');
    check(replacements === '', `replacements left: ${replacements}`);
    // Every listed checkpoint is complete, on both hosts; the target's staging is empty too.
    const { checkpoints } = await api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints');
    const onTarget = (await callApi<{ checkpoints: Checkpoint[] }>(live.target, 'GET', '/v1/checkpoints'))
      .checkpoints;
    for (const cp of [...checkpoints, ...onTarget])
      check(cp.status === 'complete', `checkpoint ${cp.id} is ${cp.status}`);
    const stagingB = await readdir(path.join(live.target.work, 'data', 'staging')).catch(
      () => [] as string[],
    );
    check(stagingB.length === 0, `the target's staging holds ${stagingB.join(', ')}`);
    // A container the target created for a migration (prepared from its disk pre-copy) is used or removed.
    const createdB = (
      await hostB.docker(['ps', '-a', '--filter', 'status=created', '--format', '{{.Names}}'])
    ).stdout.trim();
    check(createdB === '', `containers left created on the target: ${createdB}`);
    // The migrated counter runs on exactly one host, and counts on there: the source is held frozen from its
    // dump until the target runs it, so even a dump cut short thaws it where it froze.
    if (migrated.before) {
      const [a, b] = [await onA(), await onB()];
      check(!(a && b), `${mig} runs on both hosts`);
      check(a || b, `${mig} runs on neither host`);
      const last = migrations.at(-1);
      if (a !== b) {
        const now = await (a ? readCounter(mig) : hostB.readCounter(mig)).catch(() => undefined);
        check(
          now?.bootId === migrated.before.bootId && now.count >= migrated.before.count,
          `${mig} did not count on (${last?.status ?? 'no migration'} ${last?.error?.code ?? ''})`,
        );
      }
    }
    // What the registry names is whole: skopeo reads every manifest there and checks each blob against its digest.
    for (const ref of [pushedRef, pulledRef].filter(Boolean)) {
      const there = await execa('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`], {
        reject: false,
      });
      if (there.exitCode !== 0) continue;
      const copied = await execa(
        'skopeo',
        ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${path.join(scratch, 'skopeo')}:x`],
        { reject: false },
      );
      check(copied.exitCode === 0, `${ref} is listed but not whole: ${copied.stderr.slice(-200)}`);
      await rm(path.join(scratch, 'skopeo'), { recursive: true, force: true });
    }
    // No chain is broken: every level's parent is listed, and the deepest level restores.
    const listed = new Set(checkpoints.map((c) => c.id));
    for (const cp of checkpoints)
      if (cp.chain?.parent !== undefined)
        check(listed.has(cp.chain.parent), `${cp.id} builds on ${cp.chain.parent}, which is not listed`);
    const deepest = checkpoints
      .filter((c) => c.chain?.parent !== undefined)
      .sort((a, b) => b.chain!.depth - a.chain!.depth)[0];
    /** A checkpoint restores into a new container (removed with the others below) that counts. */
    const restoresAsNew = async (cp: Checkpoint, what: string) => {
      try {
        const copy = containers.uniqueName('fault-new');
        await api('POST', `/v1/checkpoints/${cp.id}/restore`, { name: copy });
        await counterAtLeast(copy, 1);
      } catch (err) {
        broken.push(`${what} does not restore: ${String(err)}`);
      }
    };
    if (deepest) await restoresAsNew(deepest, `level ${deepest.chain?.depth} of a chain`);
    // A pulled checkpoint, complete as every listed one, restores (the trim below deletes it).
    const pulledHere = checkpoints.find((c) => (c as { name?: string }).name === 'fault-pulled');
    if (pulledHere) await restoresAsNew(pulledHere, 'the pulled checkpoint');
    // A fresh checkpoint and restore of the counter work, and it counts on.
    try {
      await ensureRunning(counter);
      const before = await counterAtLeast(counter, 1);
      const fresh = await api<Checkpoint>('POST', `/v1/containers/${counter}/checkpoints`, {});
      await api('POST', `/v1/checkpoints/${fresh.id}/restore`);
      const after = await readCounter(counter);
      check(after.bootId === before.bootId && after.count >= before.count, 'the fresh restore did not go on');
    } catch (err) {
      broken.push(`fresh checkpoint and restore: ${String(err)}`);
    }
    t.log(
      `point ${point}: ${op.name}, killed after ${delay} ms${midway ? '' : ' (it had ended)'}: ${broken.length === 0 ? 'ok' : broken.join('; ')}`,
    );
    violations.push(...broken.map((b) => `point ${point} (${op.name}, ${delay} ms): ${b}`));

    // Back to the starting line: the workloads run, containers restored as new are gone, checkpoints trimmed.
    await ensureRunning(counter);
    await ensureRunning(bound);
    const extra = (await docker('ps', '-a', '--filter', 'name=fault-new', '--format', '{{.Names}}')).split(
      '\n',
    );
    for (const name of extra.filter(Boolean)) await execa('docker', ['rm', '-f', name]);
    // Newest first: a level goes before the one it builds on, and nothing is rebased only to be deleted.
    for (const cp of [...checkpoints].reverse())
      if (cp.id !== bigCheckpoint.id) await api('DELETE', `/v1/checkpoints/${cp.id}`);
    for (const cp of onTarget) await callApi(live.target, 'DELETE', `/v1/checkpoints/${cp.id}`);
  }

  t.log(
    `${POINTS} kill points, ${killedMidway} of them mid-operation; ${violations.length} invariant violations`,
  );
  // Every checkpoint left restores: the 256 MiB one, as a new container that answers with its memory intact.
  const copy = containers.uniqueName('fault-big-copy');
  await api('POST', `/v1/checkpoints/${bigCheckpoint.id}/restore`, { name: copy });
  t.true(await running(copy));
  t.deepEqual(violations, [], `seed ${SEED}`);
});
