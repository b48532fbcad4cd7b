import test from 'ava';
import { toCreateOptions } from '../../src/adapters/docker/create-options.js';

const inspect = {
  Id: 'abc',
  Name: '/orig',
  Image: 'sha256:' + 'f'.repeat(64),
  Config: { Image: 'app:1', Env: ['A=1'], Cmd: ['run'], Labels: { keep: 'yes' }, Hostname: 'abc' },
  HostConfig: {
    PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '32768' }], '9090/tcp': null },
    RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
    NetworkMode: 'default',
  },
  NetworkSettings: { Networks: { bridge: { Aliases: null } } },
};

test('the new container pins the image by id, keeps config and restart policy, and merges labels', (t) => {
  const opts = toCreateOptions(inspect, 'copy', { 'io.cryo.restored-from': 'cp1' });
  t.is(opts.name, 'copy');
  t.is(opts.Image, inspect.Image);
  t.deepEqual(opts.Env, ['A=1']);
  t.deepEqual(opts.Cmd, ['run']);
  t.deepEqual(opts.Labels, { keep: 'yes', 'io.cryo.restored-from': 'cp1' });
  t.deepEqual(opts.HostConfig?.RestartPolicy, { Name: 'always', MaximumRetryCount: 0 });
  t.is(opts.NetworkingConfig, undefined);
});

test('published ports keep their host address but take a free host port', (t) => {
  const opts = toCreateOptions(inspect, 'copy', {});
  t.deepEqual(opts.HostConfig?.PortBindings, {
    '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
    '9090/tcp': [],
  });
  t.is(inspect.HostConfig.PortBindings['8080/tcp']?.[0]?.HostPort, '32768', 'the input is not modified');
});

test('a user-defined network is joined again with its aliases', (t) => {
  const opts = toCreateOptions(
    {
      ...inspect,
      HostConfig: { ...inspect.HostConfig, NetworkMode: 'appnet' },
      NetworkSettings: { Networks: { appnet: { Aliases: ['web'], IPAddress: '10.0.0.5' } } },
    },
    'copy',
    {},
  );
  t.deepEqual(opts.NetworkingConfig, { EndpointsConfig: { appnet: { Aliases: ['web'] } } });
});
