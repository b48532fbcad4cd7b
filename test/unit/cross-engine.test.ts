import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { CriuForeignImages } from '../../src/adapters/criu/criu-foreign-images.js';
import { externalNetnsImage, rootNetnsId } from '../../src/adapters/criu/netns-image.js';
import { CRIU_CONFIG_ANNOTATION, CROSS_ENGINE_CRIU_CONFIG } from '../../src/domain/cross-engine.js';
import { configDump, portableSpec } from '../../src/services/support/engine-configs.js';

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
  const foreign = new CriuForeignImages();
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
