import path from 'node:path';

/** The variables native-scripts/with-engine.sh sets to point cryo at another Docker engine. */
const ENGINE_VARIABLES = [
  'DOCKER_HOST',
  'CRYO_DOCKER_SOCKET',
  'CRYO_DOCKER_EXEC_ROOT',
  'CRYO_CONTAINERD_SOCKET',
  'CRYO_RUNC',
] as const;

/** The engine settings of this test run's environment, as a cryo started by the tests should see them. */
export function engineEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of ENGINE_VARIABLES) {
    const value = env[key];
    if (value) picked[key] = value;
  }
  return picked;
}

/** The engine under test: with-engine.sh's name for it, or the host's dockerd. */
export const engineName = process.env.CRYO_TEST_ENGINE ?? 'host';

/** The private prefix of the engine under test, where its dockerd and runc are; undefined for the host's. */
const enginePrefix = process.env.CRYO_ENGINE_PREFIX;

/** The dockerd binary a second host of this run starts, and the PATH it starts with. */
export function engineDaemon(): { dockerd: string; path: string; runtime: string } {
  const base = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  if (!enginePrefix) return { dockerd: 'dockerd', path: base, runtime: '/usr/local/lib/cryo/cryo-runtime' };
  const sbin = path.join(enginePrefix, 'usr/sbin');
  return {
    dockerd: path.join(sbin, 'dockerd'),
    path: `${sbin}:${path.join(enginePrefix, 'usr/bin')}:${base}`,
    runtime: path.join(sbin, 'cryo-runtime'),
  };
}
