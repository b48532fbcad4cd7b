import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import { ErrorCode } from '../../src/domain/errors/index.js';
import type { PushResult } from '../../src/domain/registry.js';
import { TestRegistry } from '../../harness/registry.js';
import {
  PodmanCheckpointAnnotation,
  CRIU_CONFIG_ANNOTATION,
  CROSS_ENGINE_CRIU_CONFIG,
} from '../../src/domain/cross-engine.js';
import { counterAtLeast, readCounter, sleep, type CounterReading } from '../../harness/containers.js';
import type { ExecutionContext } from 'ava';
import { cryoSuite, type CryoSuiteContext } from '../../harness/cryo-suite.js';
import {
  PODMAN,
  countsOnInPodman,
  useImageInPodman,
  podmanCounterAtLeast,
  requirePodman,
} from '../../harness/podman.js';
import { LABEL_SOURCE_ENGINE } from '../../src/domain/labels.js';
import { NODE_IMAGE } from '../../harness/prerequisites.js';
import { readTar, writeTar } from '../../harness/tar.js';

/** Where the counter workload appends each value (fixtures/workloads/counter.js). */
const COUNTER_FILE = '/state/counter.log';

interface Podman {
  podman: { tmp: string; releaseImage: () => Promise<void> };
}

const test = cryoSuite<Podman>({
  serial: true,
  extra: {
    make: async () => {
      await requirePodman();
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'cryo-cross-engine-'));
      // Podman's storage is its own: the image moves as `docker save | podman load` (same config digest, same id).
      return { podman: { tmp, releaseImage: await useImageInPodman(NODE_IMAGE, tmp) } };
    },
    cleanUp: async ({ podman }) => {
      if (!podman) return;
      await podman.releaseImage();
      await rm(podman.tmp, { recursive: true, force: true });
    },
  },
});

test('a counter checkpointed by cryo on Docker is restored by `podman container restore --import` and counts on', async (t) => {
  const { cryo, containers, podman } = t.context;
  const name = containers.uniqueName('to-podman');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 10);

  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    name: 'to-podman',
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  const archive = await cryo.download(created.body.id, 'none', 'podman');

  const items = await readTar(archive);
  const spec = JSON.parse(items.find((i) => i.header.name === 'spec.dump')!.body.toString()) as {
    hooks?: unknown;
    annotations: Record<string, string>;
  };
  t.is(spec.hooks, undefined, "Docker's hooks are not in spec.dump");
  t.is(spec.annotations[CRIU_CONFIG_ANNOTATION], CROSS_ENGINE_CRIU_CONFIG);
  t.true(
    items.some((i) => /^checkpoint\/netns-\d+\.img$/.test(i.header.name)),
    'the images name the network namespace external, for the one Podman makes',
  );

  t.false(
    items.some((i) => i.header.name === 'cryo.json'),
    "Podman's layout: no cryo.json, so that cryo reads it back as Podman's",
  );

  const file = path.join(podman.tmp, `${name}.tar`);
  await writeFile(file, archive);
  t.teardown(() => execa(PODMAN, ['rm', '-f', '-t', '0', name], { reject: false }));
  const restored = await execa(PODMAN, ['container', 'restore', '--import', file], {
    reject: false,
    all: true,
  });
  t.is(restored.exitCode, 0, restored.all);

  const state = await execa(PODMAN, ['inspect', '--format', '{{.State.Status}} {{.State.Restored}}', name]);
  t.is(state.stdout.trim(), 'running true');
  const { after, later } = await countsOnInPodman(t, name, before);
  t.is(after.pid, before.pid);
  // The counter's file came over in rootfs-diff.tar and the process goes on appending to it.
  const last = await execa(PODMAN, [
    'exec',
    name,
    '/usr/bin/node',
    '-e',
    `process.stdout.write(require('fs').readFileSync('${COUNTER_FILE}', 'utf8').trim().split('\\n').pop())`,
  ]);
  t.true(Number(last.stdout) >= later.count, `the file's last value: ${last.stdout}`);

  // And back: cryo reads that archive as any Podman archive.
  const back = await cryo.upload<Checkpoint>(archive);
  t.is(back.status, 201, JSON.stringify(back.body));
  t.regex(back.body.name, /^podman-/);
  t.is(back.body.container?.name, name);
});

test('a counter checkpointed by `podman container checkpoint --export` is imported by cryo, restored into Docker, and counts on', async (t) => {
  const { cryo, containers, podman } = t.context;
  const name = containers.uniqueName('from-podman');
  t.teardown(() => execa(PODMAN, ['rm', '-f', '-t', '0', name], { reject: false }));
  await execa(PODMAN, ['run', '-d', '--name', name, '-p', '127.0.0.1::8080', NODE_IMAGE]);
  const before = await podmanCounterAtLeast(name, 10);
  const file = path.join(podman.tmp, `${name}.tar.zst`);
  await execa(PODMAN, ['container', 'checkpoint', '--export', file, name]);
  const archive = await readFile(file);

  // What does not cross yet is refused before anything is written: a named volume.
  const listed = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body;
  const items = await readTar(await zstdDecompress(archive));
  const withVolume = items.map((i) => {
    if (i.header.name !== 'config.dump') return i;
    const config = JSON.parse(i.body.toString()) as Record<string, unknown>;
    const body = Buffer.from(JSON.stringify({ ...config, namedVolumes: [{ Name: 'data', Dest: '/data' }] }));
    return { header: { ...i.header, size: body.length }, body };
  });
  const refused = await cryo.upload<ErrorBody>(await writeTar(withVolume));
  t.is(refused.status, 400);
  t.is(refused.body.code, ErrorCode.ARCHIVE_INVALID);
  t.regex(refused.body.message, /named volumes \(data\)/);
  t.deepEqual((await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body, listed);

  const imported = await cryo.upload<Checkpoint>(archive, 'application/zstd');
  t.is(imported.status, 201, JSON.stringify(imported.body));
  t.is(imported.body.container?.name, name);
  const target = containers.uniqueName('from-podman-in-docker');
  await countsOnInDocker(t, imported.body.id, target, before);
  const { stdout } = await execa('docker', [
    'inspect',
    '--format',
    `{{index .Config.Labels "${LABEL_SOURCE_ENGINE}"}}`,
    target,
  ]);
  t.is(stdout.trim(), 'podman');
});

/** cryo restores the checkpoint into a new Docker container, `target`, whose counter goes on from `before`. */
async function countsOnInDocker(
  t: ExecutionContext<CryoSuiteContext>,
  checkpointId: string,
  target: string,
  before: CounterReading,
): Promise<void> {
  const restored = await t.context.cryo.api<RestoreResult>(
    'POST',
    `/v1/checkpoints/${checkpointId}/restore`,
    {
      name: target,
    },
  );
  t.is(restored.status, 201, JSON.stringify(restored.body));
  const after = await readCounter(target);
  t.is(after.bootId, before.bootId, 'the same process, restored, not the workload started again');
  t.true(after.count >= before.count, `restored at ${after.count}, read ${before.count} under Podman`);
  await sleep(500);
  t.true((await readCounter(target)).count > after.count, 'it counts on under Docker, on its published port');
}

async function zstdDecompress(archive: Buffer): Promise<Buffer> {
  const { stdout } = await execa('zstd', ['-d', '-c'], { input: archive, encoding: 'buffer' });
  return Buffer.from(stdout);
}

test('a Docker checkpoint pushed as a Podman checkpoint image is pulled and restored by `podman container restore IMAGE`, and counts on', async (t) => {
  const { cryo, containers } = t.context;
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const name = containers.uniqueName('image-to-podman');
  await containers.run({ image: NODE_IMAGE, name, publish: 8080 });
  const before = await counterAtLeast(name, 10);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, { name: 'image' });
  t.is(created.status, 201, JSON.stringify(created.body));

  const reference = `${registry.address}/team/${name}:checkpoint`;
  const pushed = await cryo.api<PushResult>('POST', `/v1/checkpoints/${created.body.id}/push`, {
    reference,
    format: 'podman',
  });
  t.is(pushed.status, 200, JSON.stringify(pushed.body));
  const raw = JSON.parse(
    (await execa('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reference}`])).stdout,
  ) as { config: { mediaType: string }; layers: unknown[]; annotations: Record<string, string> };
  t.is(
    raw.config.mediaType,
    'application/vnd.oci.image.config.v1+json',
    'a plain OCI image, as Podman writes one',
  );
  t.is(raw.layers.length, 1);
  t.is(raw.annotations[PodmanCheckpointAnnotation.NAME], name);
  t.is(
    raw.annotations[PodmanCheckpointAnnotation.CRIO_NAME],
    name,
    'what CRI-O needs to restore it in Kubernetes',
  );
  t.is(raw.annotations[PodmanCheckpointAnnotation.RUNTIME_NAME], 'runc');

  t.teardown(async () => {
    await execa(PODMAN, ['rm', '-f', '-t', '0', name], { reject: false });
    await execa(PODMAN, ['rmi', '-f', reference], { reject: false });
  });
  await execa(PODMAN, ['pull', '-q', '--tls-verify=false', reference]);
  const restored = await execa(PODMAN, ['container', 'restore', reference], { reject: false, all: true });
  t.is(restored.exitCode, 0, restored.all);
  await countsOnInPodman(t, name, before);

  const bad = await cryo.api<ErrorBody>('POST', `/v1/checkpoints/${created.body.id}/push`, {
    reference,
    format: 'docker',
  });
  t.is(bad.status, 400, 'an unknown format is a clear 400');

  // The same image, said to be dumped by a newer CRIU or by crun: refused before anything is written here.
  const listed = (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body;
  const repository = `team/${name}`;
  for (const [tag, annotations, why] of [
    ['newer-criu', { [PodmanCheckpointAnnotation.CRIU_VERSION]: '999900' }, /CRIU 99\.99\.0/],
    ['crun', { [PodmanCheckpointAnnotation.RUNTIME_NAME]: 'crun' }, /crun/],
  ] as const) {
    const put = await fetch(`http://${registry.address}/v2/${repository}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: JSON.stringify({ ...raw, annotations: { ...raw.annotations, ...annotations } }),
    });
    t.is(put.status, 201);
    const refused = await cryo.api<ErrorBody>('POST', '/v1/checkpoints/pull', {
      reference: `${registry.address}/${repository}:${tag}`,
    });
    t.is(refused.status, 409, JSON.stringify(refused.body));
    t.is(refused.body.code, ErrorCode.HOST_MISMATCH);
    t.regex(refused.body.message, why);
  }
  t.deepEqual((await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body, listed);
});

test('a Podman checkpoint image (`--create-image`, pushed by podman) is pulled by cryo and restored into Docker, and counts on', async (t) => {
  const { cryo, containers } = t.context;
  const registry = await TestRegistry.start();
  t.teardown(() => registry.stop());
  const name = containers.uniqueName('podman-image');
  const image = `localhost/${name}:checkpoint`;
  const reference = `${registry.address}/team/${name}:checkpoint`;
  t.teardown(async () => {
    await execa(PODMAN, ['rm', '-f', '-t', '0', name], { reject: false });
    await execa(PODMAN, ['rmi', '-f', image], { reject: false });
  });
  await execa(PODMAN, ['run', '-d', '--name', name, '-p', '127.0.0.1::8080', NODE_IMAGE]);
  const before = await podmanCounterAtLeast(name, 10);
  await execa(PODMAN, ['container', 'checkpoint', '--create-image', image, name]);
  await execa(PODMAN, [
    'push',
    '-q',
    '--tls-verify=false',
    '--format',
    'oci',
    image,
    `docker://${reference}`,
  ]);

  const pulled = await cryo.api<Checkpoint>('POST', '/v1/checkpoints/pull', { reference });
  t.is(pulled.status, 201, JSON.stringify(pulled.body));
  t.is(pulled.body.container?.name, name);
  await countsOnInDocker(t, pulled.body.id, containers.uniqueName('podman-image-in-docker'), before);
});

test('what Podman cannot restore yet is refused before a byte is written: a checkpoint with a volume', async (t) => {
  const { cryo, containers } = t.context;
  const name = containers.uniqueName('volume-to-podman');
  const volume = `${name}-data`;
  t.teardown(() => execa('docker', ['volume', 'rm', '-f', volume], { reject: false }));
  await containers.run({ image: NODE_IMAGE, name, publish: 8080, volumes: [`${volume}:/data`] });
  await counterAtLeast(name, 3);
  const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
    name: 'with-volume',
    leaveRunning: true,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  const refused = await cryo.api<ErrorBody>(
    'GET',
    `/v1/checkpoints/${created.body.id}/archive?format=podman`,
  );
  t.is(refused.status, 409);
  t.is(refused.body.code, ErrorCode.CROSS_ENGINE_UNSUPPORTED);
  t.regex(refused.body.message, /\/data/);
  t.truthy(refused.body.hint);
  // cryo's own archive of it is as it was.
  t.true((await cryo.download(created.body.id)).length > 0);
});
