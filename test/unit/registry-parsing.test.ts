import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseChallenge } from '../../src/adapters/registry/auth-challenge.js';
import { credentialsFor } from '../../src/adapters/registry/registry-credentials.js';
import { formatReference, RegistryReferenceSchema } from '../../src/domain/oci-artifact.js';

test('references name their registry, repository, tag and digest; anything else is refused', (t) => {
  const digest = `sha256:${'a'.repeat(64)}`;
  t.deepEqual(RegistryReferenceSchema.parse('registry.example:5000/team/app:nightly'), {
    registry: 'registry.example:5000',
    repository: 'team/app',
    tag: 'nightly',
  });
  t.deepEqual(RegistryReferenceSchema.parse(`localhost/app@${digest}`), {
    registry: 'localhost',
    repository: 'app',
    digest,
  });
  t.deepEqual(RegistryReferenceSchema.parse('127.0.0.1:5000/a/b'), {
    registry: '127.0.0.1:5000',
    repository: 'a/b',
  });
  t.is(formatReference(RegistryReferenceSchema.parse('ghcr.io/o/r:1')), 'ghcr.io/o/r:1');
  for (const bad of [
    'app:1',
    'team/app',
    'Registry.example/APP',
    'r.example/../etc',
    'r.example/a//b',
    'r.example/a:',
    'r.example/a@sha256:zz',
    `r.example/${'a'.repeat(300)}`,
    'r.example/a b',
    '',
  ])
    t.false(RegistryReferenceSchema.safeParse(bad).success, bad);
});

test('challenges: basic and bearer with quoted, escaped and bare params; others are not taken', (t) => {
  t.deepEqual(
    parseChallenge(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
    ),
    {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example/token',
        service: 'registry.example',
        scope: 'repository:a/b:pull,push',
      },
    },
  );
  t.deepEqual(parseChallenge('Basic realm="a \\"quoted\\" realm"'), {
    scheme: 'basic',
    params: { realm: 'a "quoted" realm' },
  });
  t.deepEqual(parseChallenge('bearer realm=https://x/t'), {
    scheme: 'bearer',
    params: { realm: 'https://x/t' },
  });
  t.is(parseChallenge('Negotiate abc'), undefined);
  t.is(parseChallenge(undefined), undefined);
});

test("logins come from Docker's config.json: by host, by an https:// key, or username and password", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-auth-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  await writeFile(
    file,
    JSON.stringify({
      auths: {
        'r.example:5000': { auth: Buffer.from('alice:pa:ss').toString('base64') },
        'https://index.example/v1/': { auth: Buffer.from('bob:x').toString('base64') },
        'plain.example': { username: 'carol', password: 'y' },
        'broken.example': { auth: Buffer.from('nocolon').toString('base64') },
      },
    }),
  );
  t.deepEqual(await credentialsFor(file, 'r.example:5000'), { username: 'alice', password: 'pa:ss' });
  t.deepEqual(await credentialsFor(file, 'index.example'), { username: 'bob', password: 'x' });
  t.deepEqual(await credentialsFor(file, 'plain.example'), { username: 'carol', password: 'y' });
  t.is(await credentialsFor(file, 'broken.example'), undefined);
  t.is(await credentialsFor(file, 'other.example'), undefined);
  t.is(await credentialsFor(path.join(dir, 'missing.json'), 'r.example:5000'), undefined);
});
