import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort, sleep } from './containers.js';

export interface TestRegistryOptions {
  /** Serve HTTPS with a CA of the test's own (its PEM is `ca`). */
  tls?: boolean;
  /** htpasswd logins (bcrypt, as distribution wants them). */
  users?: Record<string, string>;
  /** The bearer-token flow: the registry trusts tokens signed by `token.certificate`'s key, from `token.realm`. */
  token?: { realm: string; service: string; issuer: string; certificate: string };
}

/**
 * Debian's docker-registry (distribution 2.8) on a free loopback port, storing in a temporary directory; its log
 * tells which blobs were uploaded. `stop` ends it and removes everything.
 */
export class TestRegistry {
  private constructor(
    readonly address: string,
    readonly dir: string,
    readonly ca: string | undefined,
    private readonly child: ResultPromise,
  ) {}

  static async start(options: TestRegistryOptions = {}): Promise<TestRegistry> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-registry-'));
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const lines = [
      'version: 0.1',
      'log:',
      '  level: info',
      '  formatter: text',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${address}`,
    ];
    let ca: string | undefined;
    if (options.tls) {
      ca = await selfSignedCa(dir, address);
      lines.push(
        '  tls:',
        `    certificate: ${path.join(dir, 'server.pem')}`,
        `    key: ${path.join(dir, 'server.key')}`,
      );
    }
    if (options.users) {
      const file = path.join(dir, 'htpasswd');
      const entries = await Promise.all(
        Object.entries(options.users).map(async ([user, pass]) =>
          (await execa('htpasswd', ['-Bbn', user, pass])).stdout.trim(),
        ),
      );
      await writeFile(file, `${entries.join('\n')}\n`);
      lines.push('auth:', '  htpasswd:', '    realm: cryo-test', `    path: ${file}`);
    }
    if (options.token) {
      const bundle = path.join(dir, 'token-ca.pem');
      await writeFile(bundle, options.token.certificate);
      lines.push(
        'auth:',
        '  token:',
        `    realm: ${options.token.realm}`,
        `    service: ${options.token.service}`,
        `    issuer: ${options.token.issuer}`,
        `    rootcertbundle: ${bundle}`,
      );
    }
    const config = path.join(dir, 'config.yml');
    await writeFile(config, `${lines.join('\n')}\n`);
    const child = execa('docker-registry', ['serve', config], {
      reject: false,
      stdout: { file: path.join(dir, 'registry.log') },
      stderr: { file: path.join(dir, 'registry.err') },
    });
    const registry = new TestRegistry(address, dir, ca, child);
    for (let i = 0; ; i++) {
      const log = await readFile(path.join(dir, 'registry.err'), 'utf8').catch(() => '');
      if (/listening on/.test(log)) return registry;
      if (i === 100 || child.exitCode !== null) {
        await registry.stop();
        throw new Error(`docker-registry did not start: ${log.slice(-500)}`);
      }
      await sleep(100);
    }
  }

  /** How many blob uploads the registry completed (PUTs that closed an upload session), from its log. */
  async blobUploads(): Promise<number> {
    const log = await readFile(path.join(this.dir, 'registry.err'), 'utf8');
    return log
      .split('\n')
      .filter(
        (l) =>
          /http\.request\.method=PUT/.test(l) &&
          /blobs\/uploads/.test(l) &&
          /http\.response\.status=201/.test(l),
      ).length;
  }

  /** Everything the registry stores, as one string: to look for bytes a push must not have sent in the clear. */
  async storedBytes(): Promise<Buffer> {
    const { stdout } = await execa('find', [path.join(this.dir, 'data'), '-type', 'f', '-name', 'data'], {
      reject: false,
    });
    return Buffer.concat(
      await Promise.all(
        stdout
          .split('\n')
          .filter(Boolean)
          .map((f) => readFile(f)),
      ),
    );
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.child;
    clearTimeout(timer);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A CA of the test's own and a server certificate it signed for 127.0.0.1; returns the CA's PEM. */
async function selfSignedCa(dir: string, address: string): Promise<string> {
  const ip = address.split(':')[0]!;
  const f = (name: string) => path.join(dir, name);
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=cryo test CA',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  ]);
  await execa('openssl', [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${ip}`,
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
  ]);
  await writeFile(f('ext.cnf'), `subjectAltName=IP:${ip}\n`);
  await execa('openssl', [
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    f('ext.cnf'),
    '-out',
    f('server.pem'),
  ]);
  return readFile(f('ca.pem'), 'utf8');
}
