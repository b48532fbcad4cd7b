import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { CriuForeignImages } from '../../src/adapters/criu/criu-foreign-images.js';
import { externalNetnsImage, rootNetnsId } from '../../src/adapters/criu/netns-image.js';
import {
  CRIU_CONFIG_ANNOTATION,
  CROSS_ENGINE_CRIU_CONFIG,
  PodmanCheckpointAnnotation,
} from '../../src/domain/cross-engine.js';
import type { OciManifest } from '../../src/domain/oci-artifact.js';
import { podmanImageMismatch } from '../../src/services/registry/podman-checkpoint-image.js';
import { LABEL_SOURCE_ENGINE } from '../../src/domain/labels.js';
import type { Manifest } from '../../src/domain/manifest.js';
import {
  configDump,
  dockerConfigFromPodman,
  notMigratableAcrossEngines,
  notPortableToPodman,
  portableSpec,
} from '../../src/services/support/engine-configs.js';

/** netns-10.img of a Podman 4.3 checkpoint (runc 1.1.5, CRIU 4.2.1): the namespace named external. */
const PODMAN_NETNS = Buffer.from(
  '1943565452379355' + '0e000000' + '420c' + Buffer.from('extRootNetNS').toString('hex'),
  'hex',
);
/** ids-1.img of a Docker 20.10 container's checkpoint: its network namespace is 10 (field 6). */
const DOCKER_IDS = Buffer.from(
  '194356543020435418000000080210021802200228093' + '00a380b400c480d5007580860' + '05',
  'hex',
);

test('the external netns image is the one Podman writes', (t) => {
  t.deepEqual(externalNetnsImage(), PODMAN_NETNS);
});

test('a Podman export adds the netns image only where the images lack one', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-foreign-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const foreign = new CriuForeignImages(dir);
  t.deepEqual(await foreign.forPodman(dir), [], 'no ids image: nothing to name');
  await writeFile(path.join(dir, 'ids-1.img'), DOCKER_IDS);
  t.is(await rootNetnsId(dir), 10);
  t.deepEqual(await foreign.forPodman(dir), [{ name: 'netns-10.img', body: PODMAN_NETNS }]);
  await writeFile(path.join(dir, 'netns-10.img'), PODMAN_NETNS);
  t.deepEqual(await foreign.forPodman(dir), [], 'a dump that named it already');
  await writeFile(path.join(dir, 'ids-1.img'), Buffer.from('not an image'));
  await t.throwsAsync(() => foreign.forPodman(dir), { message: /not a CRIU ids image/ });
});

const INSPECT = {
  Id: 'c0ffee',
  Name: '/web',
  Created: '2026-12-07T10:00:00Z',
  Image: 'sha256:d7beb353',
  Config: {
    Image: 'cryo-fixture/node:1',
    Cmd: ['/usr/bin/node', 'app.js'],
    StopSignal: 'SIGINT',
    Labels: { a: 'b' },
  },
  HostConfig: {
    NetworkMode: 'default',
    ShmSize: 0,
    PortBindings: { '8080/tcp': [{ HostIp: '', HostPort: '' }] },
  },
  NetworkSettings: { Ports: { '8080/tcp': [{ HostIp: '0.0.0.0', HostPort: '32770' }] } },
};

test("config.dump is Podman's ContainerConfig, with CRI-O's keys beside it", (t) => {
  const c = configDump(INSPECT, new Date('2026-12-07T11:00:00Z'));
  t.like(c, {
    id: 'c0ffee',
    name: 'web',
    rootfsImageID: 'd7beb353',
    rootfsImageName: 'cryo-fixture/node:1',
    rootfsImageRef: 'sha256:d7beb353',
    checkpointedTime: '2026-12-07T11:00:00.000Z',
    createNetNS: true,
    networkMode: 'bridge',
    newNetworks: { podman: { interface_name: 'eth0' } },
    stopSignal: 2,
    shmSize: 64 * 1024 * 1024,
    command: ['/usr/bin/node', 'app.js'],
  });
  t.deepEqual(c.newPortMappings, [
    { host_ip: '', container_port: 8080, host_port: 32770, range: 1, protocol: 'tcp' },
  ]);
  const host = configDump({ ...INSPECT, HostConfig: { NetworkMode: 'host' } }, new Date());
  t.like(host, { createNetNS: false, networkMode: 'host' });
  t.false('newNetworks' in host);
});

test("spec.dump leaves Docker's hooks out and names cryo's CRIU configuration for runc", (t) => {
  const spec = portableSpec({
    ociVersion: '1.0.2',
    hooks: { prestart: [{ path: '/proc/1/exe' }] },
    annotations: { x: 'y' },
  });
  t.deepEqual(spec, {
    ociVersion: '1.0.2',
    annotations: { [CRIU_CONFIG_ANNOTATION]: CROSS_ENGINE_CRIU_CONFIG, x: 'y' },
  });
  const own = portableSpec({ annotations: { [CRIU_CONFIG_ANNOTATION]: '/etc/criu/mine.conf' } }) as {
    annotations: Record<string, string>;
  };
  t.is(own.annotations[CRIU_CONFIG_ANNOTATION], '/etc/criu/mine.conf', "a container's own choice stays");
});

test("Docker's config for a Podman checkpoint: the same process and user, its ports on free host ports, /dev/shm and .containerenv bind-mounted, labelled", (t) => {
  const docker = dockerConfigFromPodman(
    {
      id: 'a'.repeat(64),
      name: 'web',
      rootfsImageID: 'e5dc5d0a',
      rootfsImageName: 'localhost/cryo-fixture/node:1',
      newPortMappings: [{ container_port: 8080, protocol: 'tcp', host_ip: '127.0.0.1' }],
      labels: { team: 'a' },
    },
    {
      hostname: 'c8b7f581505e',
      process: {
        args: ['/usr/bin/node', '/app/counter.js'],
        env: ['container=podman', 'PATH=/usr/bin', 'HOSTNAME=c8b7f581505e'],
        cwd: '/app',
        user: { uid: 1000, gid: 1000 },
      },
    },
    { '/run/.containerenv': '/var/lib/cryo/foreign/containerenv' },
  );
  t.like(docker, {
    Name: '/web',
    Image: 'sha256:e5dc5d0a',
    Config: {
      Entrypoint: ['/usr/bin/node'],
      Cmd: ['/app/counter.js'],
      Env: ['PATH=/usr/bin'],
      WorkingDir: '/app',
      User: '1000:1000',
      Hostname: 'c8b7f581505e',
      Labels: { team: 'a', [LABEL_SOURCE_ENGINE]: 'podman' },
    },
    HostConfig: {
      NetworkMode: 'default',
      IpcMode: 'shareable',
      PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
      Binds: ['/var/lib/cryo/foreign/containerenv:/run/.containerenv:ro'],
    },
  });
});

test('the images of a Podman checkpoint: its external netns image goes, and the core image names the machine', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-from-podman-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'ids-1.img'), DOCKER_IDS);
  await writeFile(path.join(dir, 'netns-10.img'), PODMAN_NETNS);
  // core-1.img's first record begins with mtype 1 (x86_64), as CRIU 4.2.1 wrote it.
  await writeFile(path.join(dir, 'core-1.img'), Buffer.from('1943565447380555' + '02000000' + '0801', 'hex'));
  const foreign = new CriuForeignImages(dir);
  t.deepEqual(await foreign.fromPodman(dir), { machine: 'x86_64' });
  await t.throwsAsync(() => access(path.join(dir, 'netns-10.img')));
  const binds = await foreign.podmanBindFiles();
  t.is(await readFile(binds['/run/.containerenv']!, 'utf8'), '');
});

test("what does not cross to Podman: volumes, bind mounts, another container's network", (t) => {
  const manifest = (mounts: { type: string; destination: string }[]) =>
    ({ mounts: mounts.map((m) => ({ ...m, readOnly: false, included: false })) }) as unknown as Manifest;
  t.is(notPortableToPodman(manifest([{ type: 'tmpfs', destination: '/run' }]), INSPECT), undefined);
  t.regex(notPortableToPodman(manifest([{ type: 'volume', destination: '/data' }]), INSPECT)!.what, /\/data/);
  t.regex(
    notPortableToPodman(manifest([{ type: 'bind', destination: '/etc/app.conf' }]), INSPECT)!.what,
    /app\.conf/,
  );
  const shared = { ...INSPECT, HostConfig: { NetworkMode: 'container:db' } };
  t.regex(notPortableToPodman(manifest([]), shared)!.what, /container:db/);
});

test("a running container that cannot migrate between the engines, from its inspect: its volumes and binds, another container's network", (t) => {
  t.is(notMigratableAcrossEngines({ ...INSPECT, Mounts: [] }), undefined);
  t.is(notMigratableAcrossEngines(INSPECT), undefined, 'an inspect without Mounts');
  const bound = { ...INSPECT, Mounts: [{ Type: 'bind', Destination: '/data' }] };
  t.regex(notMigratableAcrossEngines(bound)!, /\/data/);
  const volume = { ...INSPECT, Mounts: [{ Type: 'volume', Destination: '/var/lib/db' }] };
  t.regex(notMigratableAcrossEngines(volume)!, /\/var\/lib\/db/);
  const shared = { ...INSPECT, HostConfig: { NetworkMode: 'container:db' } };
  t.regex(notMigratableAcrossEngines(shared)!, /container:db/);
});

test('a Podman checkpoint image this host cannot restore is named from its annotations: architecture, CRIU, runtime', (t) => {
  const image = (annotations: Record<string, string>) =>
    ({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: 'sha256:' + '0'.repeat(64),
        size: 2,
      },
      layers: [],
      annotations,
    }) as unknown as OciManifest;
  const host = { arch: 'x86_64', criuVersion: '4.2.1' };
  t.is(podmanImageMismatch(image({}), host), undefined, 'no annotation says nothing');
  t.is(
    podmanImageMismatch(
      image({
        [PodmanCheckpointAnnotation.HOST_ARCH]: 'amd64',
        [PodmanCheckpointAnnotation.CRIU_VERSION]: '40201',
        [PodmanCheckpointAnnotation.RUNTIME_NAME]: '/usr/bin/runc',
      }),
      host,
    ),
    undefined,
    "Podman's own annotations of a dump this host can restore: go-criu's number, the runtime's path",
  );
  t.is(podmanImageMismatch(image({ [PodmanCheckpointAnnotation.CRIU_VERSION]: '4.1' }), host), undefined);
  t.regex(
    podmanImageMismatch(image({ [PodmanCheckpointAnnotation.HOST_ARCH]: 'arm64' }), host)!.message,
    /arm64, this host is amd64/,
  );
  t.regex(
    podmanImageMismatch(image({ [PodmanCheckpointAnnotation.CRIU_VERSION]: '40300' }), host)!.message,
    /CRIU 4\.3\.0, this host has CRIU 4\.2\.1/,
  );
  t.regex(
    podmanImageMismatch(image({ [PodmanCheckpointAnnotation.RUNTIME_NAME]: 'crun' }), host)!.hint,
    /podman on a host with crun/,
  );
});
