import { access, readdir } from 'node:fs/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Checkpoint, RestoreResult } from '../../src/domain/checkpoint.js';
import type { ErrorBody } from '../../src/domain/error-body.js';
import type { Manifest } from '../../src/domain/manifest.js';
import { counterAtLeast, readCounter, sleep } from '../../harness/containers.js';
import { cryoSuite } from '../../harness/cryo-suite.js';
import { TestCryo } from '../../harness/cryo.js';
import { NODE_IMAGE } from '../../harness/prerequisites.js';
import { bringUpSecondHost } from '../../harness/second-host.js';
import { readTar, sha256, writeTar, type TarItem } from '../../harness/tar.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

interface Made {
  /** Shared by the serial tests (ava gives each test a shallow copy of the context). */
  made: {
    /** An archive exported from a real checkpoint, the base for the crafted ones. */
    archive: Buffer;
    counterBefore: number;
    bootId: string;
  };
}
const test = cryoSuite<Made>({
  extra: { make: async () => ({ made: { archive: Buffer.alloc(0), counterBefore: 0, bootId: '' } }) },
});

const VOLUME_FILE = '/data/note.txt';

async function execIn(ref: string, script: string, dockerArgs: string[] = []): Promise<string> {
  const { stdout } = await execa('docker', [...dockerArgs, 'exec', ref, '/usr/bin/node', '-e', script]);
  return stdout.trim();
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

test.serial(
  'round trip: files written, a file deleted from the image and a volume survive export, delete and import',
  async (t) => {
    const { cryo, containers } = t.context;
    const name = containers.uniqueName('roundtrip');
    const volume = `${name}-vol`;
    await containers.run({ image: NODE_IMAGE, name, publish: 8080, volumes: [`${volume}:/data`] });
    t.teardown(async () => {
      await containers.removeAll();
      await execa('docker', ['volume', 'rm', '-f', volume], { reject: false });
    });
    await counterAtLeast(name, 5);
    await execIn(
      name,
      `const fs=require('fs'); fs.writeFileSync('/app/written.txt','written before the checkpoint'); fs.mkdirSync('/app/newdir/sub',{recursive:true}); fs.writeFileSync('/app/newdir/sub/deep.txt','deep'); fs.rmSync('/etc/group'); fs.writeFileSync('${VOLUME_FILE}','in the volume')`,
    );
    const before = await counterAtLeast(name, 15);

    const created = await cryo.api<Checkpoint>('POST', `/v1/containers/${name}/checkpoints`, {
      name: 'portable',
      includeVolumes: true,
    });
    t.is(created.status, 201, JSON.stringify(created.body));
    const archive = await cryo.download(created.body.id);
    Object.assign(t.context.made, { archive, counterBefore: before.count, bootId: before.bootId });

    const items = await readTar(archive);
    t.is(items[0]?.header.name, 'cryo.json', 'the manifest comes first');
    const manifest = JSON.parse(items[0]!.body.toString()) as Manifest;
    t.is(manifest.image.ref, NODE_IMAGE);
    t.is(manifest.container.name, name);
    t.deepEqual(manifest.rootfs.deleted, 1);
    t.true(manifest.mounts.some((m) => m.name === volume && m.included));
    const names = items.map((i) => i.header.name);
    for (const entry of [
      'config.dump',
      'spec.dump',
      'rootfs-diff.tar',
      'deleted.files',
      'checkpoint/inventory.img',
      `volumes/${volume}.tar`,
    ]) {
      t.true(names.includes(entry), entry);
    }
    for (const e of manifest.entries) {
      const item = items.find((i) => i.header.name === e.name);
      t.is(item && sha256(item.body), e.sha256, `sha256 of ${e.name}`);
    }
    t.deepEqual(JSON.parse(items.find((i) => i.header.name === 'deleted.files')!.body.toString()), [
      '/etc/group',
    ]);
    const diff = (await readTar(items.find((i) => i.header.name === 'rootfs-diff.tar')!.body)).map(
      (i) => i.header.name,
    );
    t.true(diff.includes('app/written.txt') && diff.includes('app/newdir/sub/deep.txt'), diff.join(','));

    // Delete everything: the checkpoint, the container and its volume.
    t.is((await cryo.api('DELETE', `/v1/checkpoints/${created.body.id}`)).status, 204);
    await execa('docker', ['rm', '-f', name]);
    await execa('docker', ['volume', 'rm', volume]);

    const imported = await cryo.upload<Checkpoint>(archive);
    t.is(imported.status, 201, JSON.stringify(imported.body));
    t.is(imported.body.name, 'portable');
    t.is(imported.body.container!.name, name);

    const restoredName = containers.uniqueName('restored');
    const restored = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${imported.body.id}/restore`, {
      name: restoredName,
    });
    t.is(restored.status, 201, JSON.stringify(restored.body));
    const after = await readCounter(restoredName);
    t.is(after.bootId, before.bootId, 'the same process goes on');
    t.true(after.count >= before.count, `counter ${after.count} >= ${before.count}`);
    t.is(
      await execIn(
        restoredName,
        `process.stdout.write(require('fs').readFileSync('/app/written.txt','utf8'))`,
      ),
      'written before the checkpoint',
    );
    t.is(
      await execIn(
        restoredName,
        `process.stdout.write(require('fs').readFileSync('/app/newdir/sub/deep.txt','utf8'))`,
      ),
      'deep',
    );
    t.is(
      await execIn(restoredName, `process.stdout.write(String(require('fs').existsSync('/etc/group')))`),
      'false',
      'the deleted file stays deleted',
    );
    t.is(
      await execIn(restoredName, `process.stdout.write(String(require('fs').existsSync('/etc/passwd')))`),
      'true',
    );
    t.is(
      await execIn(restoredName, `process.stdout.write(require('fs').readFileSync('${VOLUME_FILE}','utf8'))`),
      'in the volume',
    );
    const lines = (
      await execIn(
        restoredName,
        `process.stdout.write(require('fs').readFileSync('/state/counter.log','utf8'))`,
      )
    )
      .split('\n')
      .map(Number);
    t.deepEqual(
      lines,
      lines.map((_, i) => i + 1),
      'the counter file continues without a gap',
    );

    // The same checkpoint restores again, into a container with its own copy of the changes.
    const second = containers.uniqueName('restored2');
    const again = await cryo.api<RestoreResult>('POST', `/v1/checkpoints/${imported.body.id}/restore`, {
      name: second,
    });
    t.is(again.status, 201, JSON.stringify(again.body));
    t.is((await readCounter(second)).bootId, before.bootId);
    await execIn(second, `require('fs').writeFileSync('/app/written.txt','changed in the second copy')`);
    t.is(
      await execIn(
        restoredName,
        `process.stdout.write(require('fs').readFileSync('/app/written.txt','utf8'))`,
      ),
      'written before the checkpoint',
    );
    await counterAtLeast(second, after.count + 3);

    const dup = await cryo.upload<ErrorBody>(archive);
    t.is(dup.status, 409);
    t.is(dup.body.code, ErrorCode.CHECKPOINT_NAME_IN_USE);

    for (const compress of ['gzip', 'zstd'] as const) {
      const packed = await cryo.download(imported.body.id, compress);
      t.is(packed[0], compress === 'gzip' ? 0x1f : 0x28, `${compress} magic`);
      await cryo.api('DELETE', `/v1/checkpoints/${imported.body.id}`);
      const back = await cryo.upload<Checkpoint>(packed, 'application/octet-stream');
      t.is(back.status, 201, `${compress}: ${JSON.stringify(back.body)}`);
      imported.body.id = back.body.id;
    }
  },
);

test.serial('checkpointctl reads an exported archive', async (t) => {
  const { archive } = t.context.made;
  t.true(archive.length > 0, 'the round trip made an archive');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-ctl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'checkpoint.tar');
  await writeFile(file, archive);
  const show = await execa('checkpointctl', ['show', file]);
  t.regex(show.stdout, /cryo-fixture\/node:1/);
  // The runtime the container ran under: dockerd's default (runc, or cryo's where it is the default).
  const runtime = (await execa('docker', ['info', '-f', '{{.DefaultRuntime}}'])).stdout.trim();
  t.regex(show.stdout, new RegExp(`\\s${runtime}\\s`));
  const tree = await execa('checkpointctl', ['inspect', '--ps-tree', file]);
  t.regex(tree.stdout, /node/);
  t.regex(tree.stdout, /Process tree/);
});

async function tamper(
  archive: Buffer,
  edit: (items: TarItem[], manifest: Manifest) => void,
): Promise<Buffer> {
  const items = await readTar(archive);
  const manifest = JSON.parse(items[0]!.body.toString()) as Manifest;
  edit(items, manifest);
  items[0]!.body = Buffer.from(JSON.stringify(manifest));
  return writeTar(items);
}

const OUTSIDE = '/tmp/cryo-escape-test';

test.serial(
  'imports refuse unsafe, inconsistent, truncated and oversized archives, and leave nothing behind',
  async (t) => {
    const { cryo } = t.context;
    const { archive } = t.context.made;
    t.true(archive.length > 0);
    await rm(OUTSIDE, { recursive: true, force: true });
    // Start from an empty catalog, so that no import is refused for its name.
    for (const c of (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body
      .checkpoints) {
      await cryo.api('DELETE', `/v1/checkpoints/${c.id}`);
    }
    const listing = async () => ({
      staging: await readdir(path.join(cryo.dataDir, 'staging')),
      checkpoints: (await readdir(path.join(cryo.dataDir, 'checkpoints'))).sort(),
      catalog: (await cryo.api<{ checkpoints: Checkpoint[] }>('GET', '/v1/checkpoints')).body.checkpoints.map(
        (c) => c.id,
      ),
    });
    const before = await listing();
    const inserted = (item: TarItem) => (items: TarItem[]) => items.splice(1, 0, item);

    const cases: [string, Buffer, RegExp][] = [
      [
        'absolute path',
        await tamper(archive, inserted({ header: { name: `${OUTSIDE}/abs` }, body: Buffer.from('x') })),
        /absolute path or "\.\."/,
      ],
      [
        '.. path',
        await tamper(
          archive,
          inserted({
            header: { name: `checkpoint/../../../../../../..${OUTSIDE}/dots` },
            body: Buffer.from('x'),
          }),
        ),
        /absolute path or "\.\."/,
      ],
      [
        'symlink outside',
        await tamper(
          archive,
          inserted({
            header: { name: 'checkpoint/escape', type: 'symlink', linkname: `../../../../../..${OUTSIDE}` },
            body: Buffer.alloc(0),
          }),
        ),
        /points outside/,
      ],
      [
        'absolute symlink',
        await tamper(
          archive,
          inserted({ header: { name: 'escape', type: 'symlink', linkname: '/etc' }, body: Buffer.alloc(0) }),
        ),
        /points outside/,
      ],
      [
        'hardlink outside',
        await tamper(
          archive,
          inserted({
            header: { name: 'passwd', type: 'link', linkname: '/etc/passwd' },
            body: Buffer.alloc(0),
          }),
        ),
        /hard link/,
      ],
      [
        'device node',
        await tamper(
          archive,
          inserted({
            header: { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 },
            body: Buffer.alloc(0),
          }),
        ),
        /character-device/,
      ],
      [
        'sha256 differs',
        await tamper(archive, (items) => {
          const pages = items.find((i) => i.header.name.startsWith('checkpoint/pages-'))!;
          pages.body = Buffer.from(pages.body);
          pages.body[100] = (pages.body[100]! + 1) % 256;
        }),
        /does not match its sha256/,
      ],
      [
        'size differs',
        await tamper(archive, (_items, m) => {
          const e = m.entries.find((x) => x.name === 'config.dump')!;
          e.size += 1;
        }),
        /config\.dump" has \d+ bytes/,
      ],
      [
        'unlisted entry',
        await tamper(archive, inserted({ header: { name: 'extra.txt' }, body: Buffer.from('x') })),
        /not listed/,
      ],
      ['manifest not first', await tamper(archive, (items) => items.push(items.shift()!)), /first entry/],
      ['truncated', archive.subarray(0, Math.floor(archive.length * 0.6)), /truncated|Unexpected end/i],
      [
        'truncated zstd',
        Buffer.from(
          (await execa('zstd', ['-q', '-c'], { input: archive, encoding: 'buffer' })).stdout,
        ).subarray(0, 4000),
        /truncated|zstd|end/i,
      ],
      ['not an archive', Buffer.from('this is not a tar archive at all, just text'.repeat(40)), /.+/],
    ];
    for (const [label, body, message] of cases) {
      const res = await cryo.upload<ErrorBody>(body);
      t.is(res.status, 400, `${label}: ${JSON.stringify(res.body)}`);
      t.is(res.body.code, ErrorCode.ARCHIVE_INVALID, label);
      t.regex(res.body.message, message, label);
      t.truthy(res.body.hint, label);
      t.deepEqual(await listing(), before, `${label}: nothing left behind`);
      t.false(await exists(OUTSIDE), `${label}: nothing written outside the staging area`);
    }

    const small = await TestCryo.start({ maxImportBytes: 1024 * 1024 });
    try {
      const res = await small.upload<ErrorBody>(archive);
      t.is(res.status, 413, JSON.stringify(res.body));
      t.is(res.body.code, ErrorCode.ARCHIVE_INVALID);
      t.regex(res.body.hint ?? '', /CRYO_MAX_IMPORT_BYTES/);
      t.deepEqual(await readdir(path.join(small.dataDir, 'staging')), []);
      t.deepEqual(await readdir(path.join(small.dataDir, 'checkpoints')), []);
    } finally {
      await small.stop();
    }
  },
);

test.serial(
  'an archive imported on a second Docker host restores there, once its image is there, also from the other image store',
  async (t) => {
    const { archive, counterBefore, bootId } = t.context.made;
    t.true(archive.length > 0);
    // Where the engine has both image stores, the second host uses the one this host does not: the image gets
    // another id there (a manifest digest instead of a config digest), and the restore must still find it.
    const { stdout } = await execa('docker', ['info', '-f', '{{.ServerVersion}} {{.Driver}}']);
    const [version, driver] = stdout.trim().split(' ');
    const bothStores = Number.parseInt(version!, 10) >= 24;
    const containerdStore = bothStores ? driver !== 'overlayfs' : false;
    t.log(
      `this host: ${driver!}; the second host: ${containerdStore ? 'containerd image store' : 'overlay2'}`,
    );
    const { host: hostB, cryo: cryoB } = await bringUpSecondHost(t, { containerdStore });
    const storeB = (await hostB.docker(['info', '-f', '{{.Driver}}'])).stdout.trim();
    t.is(storeB === 'overlayfs', containerdStore);

    const imported = await cryoB.upload<Checkpoint>(archive);
    t.is(imported.status, 201, JSON.stringify(imported.body));
    const missing = await cryoB.api<ErrorBody>('POST', `/v1/checkpoints/${imported.body.id}/restore`, {
      name: 'moved',
    });
    t.is(missing.status, 404, JSON.stringify(missing.body));
    t.is(missing.body.code, ErrorCode.IMAGE_NOT_FOUND);
    t.regex(missing.body.hint ?? '', /cryo-fixture\/node:1/);
    t.is((await hostB.docker(['ps', '-aq'])).stdout.trim(), '', 'no half-restored container');

    await hostB.loadImage(NODE_IMAGE);
    const idA = (await execa('docker', ['image', 'inspect', '-f', '{{.Id}}', NODE_IMAGE])).stdout.trim();
    const idB = (await hostB.docker(['image', 'inspect', '-f', '{{.Id}}', NODE_IMAGE])).stdout.trim();
    if (bothStores) t.not(idB, idA, 'the other store knows the image by another id');
    const restored = await cryoB.api<RestoreResult>('POST', `/v1/checkpoints/${imported.body.id}/restore`, {
      name: 'moved',
    });
    t.is(restored.status, 201, JSON.stringify(restored.body));
    const read = async () =>
      JSON.parse(
        (
          await hostB.docker([
            'exec',
            'moved',
            '/usr/bin/node',
            '-e',
            "fetch('http://127.0.0.1:8080/').then(r=>r.text()).then(t=>process.stdout.write(t))",
          ])
        ).stdout,
      ) as { count: number; bootId: string };
    const first = await read();
    t.is(first.bootId, bootId, 'the checkpointed process runs on the second host');
    t.true(first.count >= counterBefore);
    await sleep(500);
    t.true((await read()).count > first.count, 'and keeps counting');
    const written = await hostB.docker([
      'exec',
      'moved',
      '/usr/bin/node',
      '-e',
      "process.stdout.write(require('fs').readFileSync('/app/written.txt','utf8'))",
    ]);
    t.is(written.stdout, 'written before the checkpoint');
  },
);
