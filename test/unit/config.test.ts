import test from 'ava';
import { loadConfig } from '../../src/config.js';

test('defaults: loopback only, /var/lib/cryo, the standard docker socket', (t) => {
  const c = loadConfig({});
  t.deepEqual(c.listen, { host: '127.0.0.1', port: 7070 });
  t.is(c.dataDir, '/var/lib/cryo');
  t.is(c.dockerSocket, '/var/run/docker.sock');
  t.is(c.token, undefined);
});

test('environment, then explicit overrides', (t) => {
  const c = loadConfig(
    {
      CRYO_LISTEN: '0.0.0.0:9000',
      CRYO_DATA_DIR: '/d',
      CRYO_TOKEN: 't'.repeat(20),
      DOCKER_HOST: 'unix:///x.sock',
    },
    { dataDir: '/e', listen: undefined },
  );
  t.deepEqual(c.listen, { host: '0.0.0.0', port: 9000 });
  t.is(c.dataDir, '/e');
  t.is(c.dockerSocket, '/x.sock');
  t.deepEqual(loadConfig({ CRYO_LISTEN: '[::1]:7070' }).listen, { host: '::1', port: 7070 });
});

test('bad values are refused', (t) => {
  t.throws(() => loadConfig({ CRYO_LISTEN: 'nohost' }));
  t.throws(() => loadConfig({ CRYO_LISTEN: '127.0.0.1:99999' }));
  t.throws(() => loadConfig({ CRYO_TOKEN: 'short' }));
});
