import { createHash, createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { counterAtLeast, hostPort, readCounter, readJson } from '../../harness/containers.js';
import { bringUpSecondHost } from '../../harness/second-host.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { TestCryo } from '../../harness/cryo.js';
import { NODE_IMAGE } from '../../harness/prerequisites.js';
import { TestRegistry } from '../../harness/registry.js';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import { ErrorCode } from '../../src/domain/errors/index.js';
import { OciMediaType } from '../../src/domain/oci-artifact.js';
import type { PushResult } from '../../src/domain/registry.js';
import type { Schedule, ScheduleRun } from '../../src/domain/schedule.js';
import { eventually } from '../../harness/eventually.js';

// Checkpoints pushed to and pulled from Debian's docker-registry (distribution 2.8) on loopback: no auth, a basic
// login over TLS with a CA of the test's own, and the bearer-token flow against a token endpoint the test serves.
const test = cryoSuite<{ work: string }>({
  serial: true,
  extra: {
    make: async () => ({ work: await mkdtemp(path.join(os.tmpdir(), 'cryo-test-registry-work-')) }),
    cleanUp: async ({ work }) => {
      if (work) await rm(work, { recursive: true, force: true });
    },
  },
});

/** A counter container and a leave-running checkpoint of it, with the reading before. */
async function counterCheckpoint(
  t: { context: { cryo: TestCryo; containers: import('../../harness/containers.js').TestContainers } },
  prefix: string,
) {
  const name = t.context.containers.uniqueName(prefix);
  await t.context.containers.run({ image: NODE_IMAGE, publish: 8080, name });
  const before = await counterAtLeast(name, 3);
  const made = await t.context.cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    name: 'pushed',
  });
  if (made.status !== 201) throw new Error(JSON.stringify(made.body));
  return { name, before, checkpoint: made.body };
}

/** A docker config.json with one login, as `docker login` writes it. */
async function authFile(work: string, registry: string, user: string, pass: string): Promise<string> {
  const file = path.join(work, `config-${randomBytes(3).toString('hex')}.json`);
  await writeFile(
    file,
    JSON.stringify({ auths: { [registry]: { auth: Buffer.from(`${user}:${pass}`).toString('base64') } } }),
  );
  return file;
}

/** Another cryo on this host, logged in to `registry` as `user` (and trusting `caFile`), stopped with the test. */
async function cryoLoggedIn(
  t: { context: { work: string }; teardown: (fn: () => Promise<void>) => void },
  registry: TestRegistry,
  user: string,
  pass: string,
  caFile?: string,
): Promise<TestCryo> {
  const cryo = await TestCryo.start({
    registryAuthFile: await authFile(t.context.work, registry.address, user, pass),
    ...(caFile ? { registryCaFile: caFile } : {}),
  });
  t.teardown(() => cryo.stop());
  return cryo;
}

test('an export is the same bytes every time, the first included: a push digests it, then sends it', async (t) => {
  const { checkpoint } = await counterCheckpoint(t, 'same');
  const exported = async () => {
    const res = await fetch(`${t.context.cryo.url}/v1/checkpoints/${checkpoint.id}/archive`, {
      headers: { authorization: `Bearer ${t.context.cryo.token}` },
    });
    return createHash('sha256')
      .update(Buffer.from(await res.arrayBuffer()))
      .digest('hex');
  };
  t.is(await exported(), await exported());
});

test('a checkpoint pushed, deleted here and pulled back restores, and the counter goes on; a second push sends nothing', async (t) => {
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const { cryo } = t.context;
  const { before, checkpoint } = await counterCheckpoint(t, 'push');
  const reference = `${registry.address}/team/counter:nightly`;

  const pushed = await cryo.api<PushResult>('POST', `/v1/checkpoints/${checkpoint.id}/push`, { reference });
  t.is(pushed.status, 200, JSON.stringify(pushed.body));
  t.is(pushed.body.reference, reference);
  t.regex(pushed.body.digest, /^sha256:[a-f0-9]{64}$/);
  t.deepEqual(
    pushed.body.layers.map((l) => l.uploaded),
    [true, true],
    'the config and the layer',
  );
  t.is(await registry.blobUploads(), 2);

  // skopeo, the yardstick, reads it as an OCI artifact of cryo's.
  const raw = JSON.parse(
    (await execa('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reference}`])).stdout,
  );
  t.is(raw.artifactType, OciMediaType.CHECKPOINT);
  t.is(raw.layers[0].mediaType, OciMediaType.LAYER);

  const again = await cryo.api<PushResult>('POST', `/v1/checkpoints/${checkpoint.id}/push`, { reference });
  t.is(again.status, 200);
  t.deepEqual(
    again.body.layers.map((l) => l.uploaded),
    [false, false],
  );
  t.is(again.body.uploadedBytes, 0);
  t.is(await registry.blobUploads(), 2, 'no blob went up twice');

  t.is((await cryo.api('DELETE', `/v1/checkpoints/${checkpoint.id}`)).status, 204);
  const pulled = await cryo.api<Checkpoint>('POST', '/v1/checkpoints/pull', { reference });
  t.is(pulled.status, 201, JSON.stringify(pulled.body));
  t.is(pulled.body.name, 'pushed');
  t.is(pulled.body.createdAt, checkpoint.createdAt);
  t.deepEqual(pulled.body.container, checkpoint.container);
  const present = await cryo.api<Checkpoint>('POST', '/v1/checkpoints/pull', {
    reference: `${registry.address}/team/counter@${pushed.body.digest}`,
  });
  t.is(present.status, 200, 'pulled again by digest: already here');
  t.is(present.body.id, pulled.body.id);
  const push = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${pulled.body.id}/push`, {
    reference: `${registry.address}/team/counter@${pushed.body.digest}`,
  });
  t.is(push.status, 400, 'a push names a tag, not a digest');

  const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${pulled.body.id}/restore`, {
    name: t.context.containers.uniqueName('pulled'),
    ports: 'free',
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  t.context.containers.track(restored.body.container!.id);
  const after = await readCounter(restored.body.container!.id);
  t.is(after.bootId, before.bootId, 'the same process, from the registry');
  t.true(after.count >= before.count);
});

test('from the command line: cryo push, then cryo restore REFERENCE on a cryo that never had it', async (t) => {
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const { before, checkpoint } = await counterCheckpoint(t, 'cli');
  const reference = `${registry.address}/cli/counter:1`;
  const pushed = await t.context.cryo.cliJson<PushResult>(['push', checkpoint.id, reference]);
  t.is(pushed.reference, reference);
  const other = await TestCryo.start();
  t.teardown(() => other.stop());
  const restored = await other.cliJson<RestoreResult>([
    'restore',
    reference,
    '--name',
    t.context.containers.uniqueName('cli-pulled'),
    '--ports',
    'free',
  ]);
  t.context.containers.track(restored.container!.id);
  const after = await readCounter(restored.container!.id);
  t.is(after.bootId, before.bootId);
  t.true(after.count >= before.count);
  const listed = await other.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints');
  t.deepEqual(
    listed.body.checkpoints.map((c) => c.name),
    ['pushed'],
    'the pulled checkpoint stays in the catalog',
  );
});

test('a schedule pushes every snapshot under its name, and retention deletes the tags of those it prunes', async (t) => {
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('sched-push');
  await containers.run({ image: NODE_IMAGE, publish: 8080, name });
  await counterAtLeast(name, 2);
  const repository = `${registry.address}/sched/counter`;
  const created = await cryo.api<Schedule>('POST', '/v1/schedules', {
    container: name,
    cron: '*/2 * * * * *',
    retain: { last: 1 },
    push: repository,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.teardown(async () => void (await cryo.api('DELETE', `/v1/schedules/${created.body.id}`)));
  const runs = await eventually(
    async () => {
      const list = (await cryo.api<{ runs: ScheduleRun[] }>('GET', `/v1/schedules/${created.body.id}/runs`))
        .body.runs;
      const done = list.filter((r) => r.outcome === 'succeeded');
      return done.length >= 3 ? done : undefined;
    },
    { what: 'three scheduled snapshots', timeoutMs: 30_000, intervalMs: 250 },
  );
  await cryo.api('PATCH', `/v1/schedules/${created.body.id}`, { enabled: false });
  for (const r of runs) {
    t.truthy(r.push?.digest, JSON.stringify(r.push));
    t.regex(r.push?.reference ?? '', new RegExp(`^${repository}:scheduled-\\d{8}T\\d+-[0-9a-z]{4}$`));
  }
  t.true(
    runs.some((r) => (r.unpushed ?? []).length > 0 && r.unpushed!.every((u) => !u.error)),
    'pruned tags were deleted',
  );
  const tags = (await (await fetch(`http://${registry.address}/v2/sched/counter/tags/list`)).json()) as {
    tags: string[] | null;
  };
  const last = runs.at(-1)!;
  t.true(
    (tags.tags ?? []).includes(last.push!.reference.split(':').at(-1)!),
    `the newest is there: ${JSON.stringify(tags)}`,
  );
  t.is((tags.tags ?? []).length, 1, `only the one retention keeps: ${JSON.stringify(tags)}`);
});

test('basic auth over TLS with a CA of its own; wrong credentials and an unknown CA get clear errors naming the registry', async (t) => {
  const registry = await TestRegistry.start({ tls: true, users: { alice: 's3cret' } });
  t.teardown(() => registry.stop());
  const caFile = path.join(t.context.work, 'ca.pem');
  await writeFile(caFile, registry.ca!);
  const good = await cryoLoggedIn(t, registry, 'alice', 's3cret', caFile);
  const { checkpoint } = await counterCheckpoint({ context: { ...t.context, cryo: good } }, 'tls');
  const reference = `${registry.address}/secure/counter:1`;
  const pushed = await good.api<PushResult>('POST', `/v1/checkpoints/${checkpoint.id}/push`, { reference });
  t.is(pushed.status, 200, JSON.stringify(pushed.body));

  const wrong = await cryoLoggedIn(t, registry, 'alice', 'nope', caFile);
  const refused = await wrong.api<ErrorBody>('POST', '/v1/checkpoints/pull', { reference });
  t.is(refused.status, 403, JSON.stringify(refused.body));
  t.is(refused.body.code, ErrorCode.REGISTRY_UNAUTHORIZED);
  t.true(refused.body.message.includes(registry.address));
  t.deepEqual(
    (await wrong.api<{ checkpoints: unknown[] }>('GET', '/v1/checkpoints')).body.checkpoints,
    [],
    'nothing written',
  );

  const noCa = await cryoLoggedIn(t, registry, 'alice', 's3cret');
  const untrusted = await noCa.api<ErrorBody>('POST', '/v1/checkpoints/pull', { reference });
  t.is(untrusted.status, 502, JSON.stringify(untrusted.body));
  t.is(untrusted.body.code, ErrorCode.REGISTRY_UNREACHABLE);
  t.regex(untrusted.body.hint ?? '', /CRYO_REGISTRY_CA_FILE/);
});

/** A token endpoint as Docker Hub's: a login buys a JWT for the scope asked, signed by a key the registry trusts. */
async function tokenServer(users: Record<string, string>) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-token-'));
  await writeFile(path.join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await execa('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    path.join(dir, 'key.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=cryo test token issuer',
    '-out',
    path.join(dir, 'cert.pem'),
  ]);
  const certificate = (await execa('cat', [path.join(dir, 'cert.pem')])).stdout;
  const der = Buffer.from(certificate.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
  const b64 = (v: unknown) =>
    Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  let asked = 0;
  const server: Server = http.createServer((req, res) => {
    asked++;
    const url = new URL(req.url ?? '/', 'http://x');
    const login = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
    const [user, pass] = login.split(':');
    if (!user || users[user] !== pass) {
      res.writeHead(401).end();
      return;
    }
    const access = (url.searchParams.get('scope') ?? '')
      .split(' ')
      .filter(Boolean)
      .map((s) => {
        const [type, name, actions] = s.split(':');
        return { type, name, actions: (actions ?? '').split(',') };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = {
      iss: 'cryo-test',
      sub: user,
      aud: url.searchParams.get('service'),
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const signing = `${b64(header)}.${b64(claims)}`;
    const signature = createSign('RSA-SHA256').update(signing).sign(privateKey).toString('base64url');
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: `${signing}.${signature}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certificate,
    asked: () => asked,
    stop: async () => {
      server.closeAllConnections();
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('the bearer-token flow (Docker Hub, GHCR, Harbor, ECR): a login buys a token for the scope, and a wrong one is refused', async (t) => {
  const tokens = await tokenServer({ bob: 'hunter2' });
  t.teardown(() => tokens.stop());
  const registry = await TestRegistry.start({
    token: {
      realm: tokens.realm,
      service: 'cryo-test-registry',
      issuer: 'cryo-test',
      certificate: tokens.certificate,
    },
  });
  t.teardown(() => registry.stop());
  const cryo = await cryoLoggedIn(t, registry, 'bob', 'hunter2');
  const { checkpoint } = await counterCheckpoint({ context: { ...t.context, cryo } }, 'token');
  const reference = `${registry.address}/bob/counter:v1`;
  const pushed = await cryo.api<PushResult>('POST', `/v1/checkpoints/${checkpoint.id}/push`, { reference });
  t.is(pushed.status, 200, JSON.stringify(pushed.body));
  t.true(tokens.asked() > 0, 'the registry sent cryo to the token endpoint');
  t.is((await cryo.api('DELETE', `/v1/checkpoints/${checkpoint.id}`)).status, 204);
  const pulled = await cryo.api<Checkpoint>('POST', '/v1/checkpoints/pull', { reference });
  t.is(pulled.status, 201, JSON.stringify(pulled.body));

  const stranger = await cryoLoggedIn(t, registry, 'bob', 'wrong');
  const refused = await stranger.api<ErrorBody>('POST', '/v1/checkpoints/pull', { reference });
  t.is(refused.status, 403, JSON.stringify(refused.body));
  t.is(refused.body.code, ErrorCode.REGISTRY_UNAUTHORIZED);
  t.regex(refused.body.message, /token endpoint answered 401/);
});

/** Puts a blob and a manifest into the registry as they are given, with no check: hostile artifacts. */
async function craft(
  registry: TestRegistry,
  repository: string,
  tag: string,
  config: Buffer,
  manifest: (configDigest: string, configSize: number) => unknown,
) {
  const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const base = `http://${registry.address}`;
  const started = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  const location = new URL(started.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    body: config,
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`blob: ${put.status}`);
  const m = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': OciMediaType.MANIFEST },
    body: JSON.stringify(manifest(digest, config.length)),
  });
  if (m.status !== 201) throw new Error(`manifest: ${m.status} ${await m.text()}`);
  return { digest, size: config.length };
}

test('hostile artifacts are refused before anything is written: another type, a layer of terabytes, 65 layers, a chain that loops, a layer that is not its digest', async (t) => {
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const { cryo } = t.context;
  const config = Buffer.from('{"formatVersion":1}');
  const layer = (digest: string, size: number) => ({ mediaType: OciMediaType.LAYER, digest, size });
  /** A checkpoint's manifest as cryo pushes it, but for what `change` makes of it. */
  const checkpointManifest =
    (change: (m: Record<string, unknown>, digest: string, size: number) => Record<string, unknown>) =>
    (digest: string, size: number) =>
      change(
        {
          schemaVersion: 2,
          mediaType: OciMediaType.MANIFEST,
          artifactType: OciMediaType.CHECKPOINT,
          config: { mediaType: OciMediaType.CONFIG, digest, size },
          layers: [layer(digest, size)],
        },
        digest,
        size,
      );
  const cases: [string, (d: string, s: number) => unknown, RegExp][] = [
    [
      'image',
      checkpointManifest(({ artifactType: _, ...m }, d, s) => ({
        ...m,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d, size: s },
      })),
      /not a cryo checkpoint/,
    ],
    [
      'huge',
      checkpointManifest((m, d) => ({ ...m, layers: [layer(d, 10 * 2 ** 40)] })),
      /claim 10995116277760 bytes/,
    ],
    [
      'many',
      checkpointManifest((m, d, s) => ({ ...m, layers: Array.from({ length: 65 }, () => layer(d, s)) })),
      /at most 64 layers/,
    ],
    ['loop', checkpointManifest((m, d, s) => ({ ...m, layers: [layer(d, s), layer(d, s)] })), /chain loops/],
    [
      'lying',
      checkpointManifest((m, d, s) => ({
        ...m,
        config: { mediaType: OciMediaType.CONFIG, digest: d, size: s + 1 },
      })),
      /does not match its descriptor/,
    ],
  ];
  for (const [tag, manifest, reason] of cases) {
    await craft(registry, 'hostile/x', tag, config, manifest);
    const refused = await cryo.api<ErrorBody>('POST', '/v1/checkpoints/pull', {
      reference: `${registry.address}/hostile/x:${tag}`,
    });
    t.is(refused.status, 422, `${tag}: ${JSON.stringify(refused.body)}`);
    t.is(refused.body.code, ErrorCode.REGISTRY_ARTIFACT_INVALID, tag);
    t.regex(refused.body.message, reason, tag);
  }
  const missing = await cryo.api<ErrorBody>('POST', '/v1/checkpoints/pull', {
    reference: `${registry.address}/hostile/x:absent`,
  });
  t.is(missing.status, 404);
  t.is(missing.body.code, ErrorCode.REGISTRY_NOT_FOUND);
  const bad = await cryo.api<ErrorBody>('POST', '/v1/checkpoints/pull', { reference: 'no-registry/x' });
  t.is(bad.status, 400);
  t.deepEqual(
    (await cryo.api<{ checkpoints: unknown[] }>('GET', '/v1/checkpoints')).body.checkpoints.filter(
      (c) => (c as Checkpoint).name === 'x',
    ),
    [],
  );
});

test('a chain goes up a layer per level: the next push sends only its own layer, another repository mounts them, and a second host restores the top with nothing local', async (t) => {
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('chain-push');
  await containers.run({
    image: NODE_IMAGE,
    cmd: ['/usr/bin/node', '/app/memory.js'],
    env: { MEMORY_MIB: '32' },
    publish: 8080,
    name,
  });
  const memory = async (touch = 0) => {
    const state = await readJson<{ sha256: string; generation: number }>(name);
    if (!touch) return state;
    const port = await hostPort(name, 8080);
    await fetch(`http://127.0.0.1:${port}/touch?pages=${touch}`, { method: 'POST' });
    return readJson<{ sha256: string; generation: number }>(name);
  };
  await memory();
  const repository = `${registry.address}/chains/memory`;
  const snapshot = async (k: number) => {
    const made = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
      leaveRunning: true,
      incremental: true,
      name: `level-${k}`,
    });
    if (made.status !== 201) throw new Error(JSON.stringify(made.body));
    const pushed = await cryo.api<PushResult>('POST', `/v1/checkpoints/${made.body.id}/push`, {
      reference: `${repository}:level-${k}`,
    });
    if (pushed.status !== 200) throw new Error(JSON.stringify(pushed.body));
    return { checkpoint: made.body, pushed: pushed.body };
  };
  const base = await snapshot(0);
  t.deepEqual(
    base.pushed.layers.map((l) => l.uploaded),
    [true, true],
  );
  await memory(160);
  const first = await snapshot(1);
  const state = await memory(160);
  const second = await snapshot(2);
  t.is(second.checkpoint.chain?.depth, 2);
  // The config and the new level go up; the levels below are in the repository already.
  t.deepEqual(
    second.pushed.layers.map((l) => l.uploaded),
    [true, false, false, true],
  );
  const own = second.pushed.layers.at(-1)!;
  t.true(
    second.pushed.uploadedBytes <= own.size * 1.1,
    `${second.pushed.uploadedBytes} bytes sent for a ${own.size}-byte level`,
  );
  t.true(own.size < base.pushed.layers[1]!.size / 4, 'a level is far smaller than the base');
  t.is(await registry.blobUploads(), 2 + 2 + 2, 'two blobs a push: its config and its own level');
  t.is(first.checkpoint.chain?.depth, 1);
  // To another repository of the same registry: every blob mounted from the first, none sent.
  const elsewhere = await cryo.api<PushResult>('POST', `/v1/checkpoints/${second.checkpoint.id}/push`, {
    reference: `${registry.address}/chains/copy:level-2`,
  });
  t.is(elsewhere.status, 200, JSON.stringify(elsewhere.body));
  t.deepEqual(
    elsewhere.body.layers.map((l) => [l.uploaded, l.mounted]),
    [
      [false, true],
      [false, true],
      [false, true],
      [false, true],
    ],
  );
  t.is(await registry.blobUploads(), 6, 'a mount sends no blob');

  const { host, cryo: there } = await bringUpSecondHost(t);
  await host.loadImage(NODE_IMAGE);
  const pulled = await there.api<Checkpoint>('POST', '/v1/checkpoints/pull', {
    reference: `${repository}:level-2`,
  });
  t.is(pulled.status, 201, JSON.stringify(pulled.body));
  t.is(pulled.body.chain?.depth, 2, 'the chain, as it was pushed');
  const levels = (await there.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints;
  t.deepEqual(levels.map((c) => c.name).sort(), ['level-0', 'level-1', 'level-2']);
  const restored = await there.api<RestoreResult>('POST', `/v1/checkpoints/${pulled.body.id}/restore`, {
    name: containers.uniqueName('chain-pulled'),
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const script = "fetch('http://127.0.0.1:8080/').then(r=>r.text()).then(t=>process.stdout.write(t))";
  const got = await eventually(
    async () => {
      const res = await host
        .docker(['exec', restored.body.container!.id, '/usr/bin/node', '-e', script])
        .catch(() => undefined);
      return res ? (JSON.parse(res.stdout) as { sha256: string; generation: number }) : undefined;
    },
    { what: 'the restored workload on the second host', timeoutMs: 20_000 },
  );
  t.is(got.sha256, state.sha256, 'the memory of level 2, bit for bit');
  t.is(got.generation, 2);

  // The level below the top, pulled again: nothing is fetched, the chain is here.
  const again = await there.api<Checkpoint>('POST', '/v1/checkpoints/pull', {
    reference: `${repository}:level-1`,
  });
  t.is(again.status, 200);
  t.is(again.body.id, levels.find((c) => c.name === 'level-1')!.id);
});

test('with a key, every layer leaves encrypted: the secret is not in the registry, skopeo decrypts it, a wrong key or a tampered layer writes nothing', async (t) => {
  const [plainRegistry, registry] = await Promise.all([TestRegistry.start(), TestRegistry.start()]);
  t.teardown(() => plainRegistry.stop());
  t.teardown(() => registry.stop());
  const { cryo, containers, work } = t.context;
  const key = async (name: string) => {
    const priv = path.join(work, `${name}.pem`);
    const pub = path.join(work, `${name}.pub.pem`);
    await execa('openssl', ['genrsa', '-out', priv, '2048']);
    await execa('openssl', ['rsa', '-in', priv, '-pubout', '-out', pub]);
    return { priv, pub };
  };
  const [right, wrong] = await Promise.all([key('right'), key('wrong')]);
  const secret = `cryo-secret-${randomBytes(12).toString('hex')}`;
  const name = containers.uniqueName('secret');
  await containers.run({
    image: NODE_IMAGE,
    cmd: ['/usr/bin/node', '/app/memory.js'],
    env: { MEMORY_MIB: '16', MEMORY_SECRET: secret },
    publish: 8080,
    name,
  });
  const state = await readJson<{ sha256: string }>(name);

  // Without a key the secret reaches the registry: the check below can fail.
  const plain = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
  });
  const plainPush = await cryo.api<PushResult>('POST', `/v1/checkpoints/${plain.body.id}/push`, {
    reference: `${plainRegistry.address}/plain/memory:1`,
  });
  t.is(plainPush.status, 200);
  t.true((await plainRegistry.storedBytes()).includes(secret), 'the plain layer holds the secret');

  const encrypting = await TestCryo.start({ registryEncryptionKey: right.pub });
  t.teardown(() => encrypting.stop());
  const made = await encrypting.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    leaveRunning: true,
    name: 'sealed',
  });
  const reference = `${registry.address}/sealed/memory:1`;
  const sealed = await encrypting.api<PushResult>('POST', `/v1/checkpoints/${made.body.id}/push`, {
    reference,
  });
  t.is(sealed.status, 200, JSON.stringify(sealed.body));
  t.false((await registry.storedBytes()).includes(secret), 'nothing in the registry holds the secret');
  // A Podman checkpoint image is not encrypted by cryo yet: refused, never pushed in the clear.
  const clear = await encrypting.api<ErrorBody>('POST', `/v1/checkpoints/${made.body.id}/push`, {
    reference: `${registry.address}/sealed/memory:podman`,
    format: 'podman',
  });
  t.is(clear.status, 409, JSON.stringify(clear.body));
  t.is(clear.body.code, ErrorCode.CROSS_ENGINE_UNSUPPORTED);
  t.false((await registry.storedBytes()).includes(secret));
  const again = await encrypting.api<PushResult>('POST', `/v1/checkpoints/${made.body.id}/push`, {
    reference,
  });
  t.deepEqual(
    again.body.layers.map((l) => l.uploaded),
    [false, false],
    'the same level is sealed the same way: nothing sent again',
  );
  const raw = JSON.parse(
    (await execa('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reference}`])).stdout,
  );
  t.is(raw.layers[0].mediaType, OciMediaType.LAYER_ENCRYPTED);

  // skopeo, with the private key, decrypts the layer into a plain tar that holds the secret.
  const layout = path.join(work, 'decrypted');
  await execa('skopeo', [
    'copy',
    '--src-tls-verify=false',
    '--decryption-key',
    right.priv,
    `docker://${reference}`,
    `oci:${layout}:1`,
  ]);
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
  const manifestDigest = (index.manifests[0].digest as string).slice('sha256:'.length);
  const decrypted = JSON.parse(await readFile(path.join(layout, 'blobs/sha256', manifestDigest), 'utf8'));
  const layerFile = path.join(layout, 'blobs/sha256', (decrypted.layers[0].digest as string).slice(7));
  const tar = await readFile(layerFile);
  t.true(tar.includes(secret), 'the decrypted layer is the plain archive');
  t.true(tar.includes(Buffer.from('cryo.json')));

  const before = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints;
  const noKey = await cryo.api<ErrorBody>('POST', '/v1/checkpoints/pull', { reference });
  t.is(noKey.status, 422);
  t.is(noKey.body.code, ErrorCode.REGISTRY_DECRYPTION_FAILED);
  t.regex(noKey.body.message, /sealed\/memory/);
  const wrongCryo = await TestCryo.start({ registryDecryptionKey: wrong.priv });
  t.teardown(() => wrongCryo.stop());
  const refused = await wrongCryo.api<ErrorBody>('POST', '/v1/checkpoints/pull', { reference });
  t.is(refused.status, 422, JSON.stringify(refused.body));
  t.is(refused.body.code, ErrorCode.REGISTRY_DECRYPTION_FAILED);
  t.deepEqual(
    (await wrongCryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
    [],
  );
  t.deepEqual(
    (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
    before,
  );

  // The same layer under a forged MAC: refused after every byte was checked, nothing published.
  const pubopts = (raw.layers[0].annotations as Record<string, string>)[
    'org.opencontainers.image.enc.pubopts'
  ]!;
  const forged = JSON.parse(Buffer.from(pubopts, 'base64').toString('utf8'));
  forged.hmac = randomBytes(32).toString('base64');
  const tampered = {
    ...raw,
    layers: [
      {
        ...raw.layers[0],
        annotations: {
          ...raw.layers[0].annotations,
          'org.opencontainers.image.enc.pubopts': Buffer.from(JSON.stringify(forged)).toString('base64'),
        },
      },
    ],
  };
  const put = await fetch(`http://${registry.address}/v2/sealed/memory/manifests/forged`, {
    method: 'PUT',
    headers: { 'content-type': OciMediaType.MANIFEST },
    body: JSON.stringify(tampered),
  });
  t.is(put.status, 201);
  const opener = await TestCryo.start({ registryDecryptionKey: right.priv });
  t.teardown(() => opener.stop());
  const forgedPull = await opener.api<ErrorBody>('POST', '/v1/checkpoints/pull', {
    reference: `${registry.address}/sealed/memory:forged`,
  });
  t.is(forgedPull.status, 422, JSON.stringify(forgedPull.body));
  t.is(forgedPull.body.code, ErrorCode.REGISTRY_DECRYPTION_FAILED);
  t.regex(forgedPull.body.message, /MAC/);
  t.deepEqual(
    (await opener.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints,
    [],
  );

  // With the right key: pulled and restored, the memory as it was.
  const pulled = await opener.api<Checkpoint>('POST', '/v1/checkpoints/pull', { reference });
  t.is(pulled.status, 201, JSON.stringify(pulled.body));
  const restored = await opener.api<RestoreResult>('POST', `/v1/checkpoints/${pulled.body.id}/restore`, {
    name: containers.uniqueName('unsealed'),
    ports: 'free',
  });
  t.is(restored.status, 201, JSON.stringify(restored.body));
  containers.track(restored.body.container!.id);
  t.is((await readJson<{ sha256: string }>(restored.body.container!.id)).sha256, state.sha256);
});
