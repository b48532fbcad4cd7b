import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

export const NODE_IMAGE = 'cryo-fixture/node:1';
export const BUSYBOX_IMAGE = 'cryo-fixture/busybox:1';
export const REDIS_IMAGE = 'cryo-fixture/redis:1';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
let checked: Promise<void> | undefined;

/**
 * Integration tests need a running dockerd with experimental features, CRIU >= 4.2 that passes `criu check`,
 * and the fixture images. A missing prerequisite fails the test run with the command that fixes it; it never
 * skips a test.
 */
export function requirePrerequisites(): Promise<void> {
  checked ??= (async () => {
    const docker = await execa('docker', ['version', '--format', '{{.Server.Experimental}}'], {
      reject: false,
    });
    if (docker.exitCode !== 0) {
      throw new Error(
        `dockerd does not answer (${docker.stderr.trim()}); run: sudo native-scripts/setup-host.sh`,
      );
    }
    if (docker.stdout.trim() !== 'true') {
      throw new Error('dockerd runs without experimental features; run: sudo native-scripts/setup-host.sh');
    }
    const criu = await execa('criu', ['check'], { reject: false, all: true });
    if (criu.exitCode !== 0)
      throw new Error(`"criu check" fails: ${criu.all}; run: sudo native-scripts/setup-host.sh`);
    await execa(`${repoRoot}fixtures/build-images.sh`, [], { stdio: 'inherit' });
  })();
  return checked;
}
