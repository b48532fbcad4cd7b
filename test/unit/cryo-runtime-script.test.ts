import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { execa } from 'execa';
import { repoRoot } from '../../harness/prerequisites.js';

// native-scripts/cryo-runtime against a stand-in runc that records its arguments: what the script hands runc.
const SCRIPT = path.join(repoRoot, 'native-scripts', 'cryo-runtime');
const ID = 'c0ffee'.padEnd(64, '0');

interface Ctx {
  dir: string;
  state: string;
  bundle: string;
  calls: string;
}
const test = anyTest as TestFn<Ctx>;

test.beforeEach(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-runtime-test-'));
  const state = path.join(dir, 'state');
  const bundle = path.join(dir, 'bundle');
  await mkdir(state);
  await mkdir(bundle);
  const calls = path.join(dir, 'calls');
  await writeFile(
    path.join(dir, 'runc'),
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >> ${calls}\necho --- >> ${calls}\n`,
  );
  await chmod(path.join(dir, 'runc'), 0o755);
  t.context = { dir, state, bundle, calls };
});

test.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true });
});

function run(t: { context: Ctx }, args: string[], env: Record<string, string> = {}) {
  return execa('sh', [SCRIPT, ...args], {
    env: { CRYO_RUNC: path.join(t.context.dir, 'runc'), CRYO_RUNTIME_STATE: t.context.state, ...env },
    reject: false,
  });
}

async function calls(t: { context: Ctx }): Promise<string[][]> {
  const text = await readFile(t.context.calls, 'utf8').catch(() => '');
  return text
    .split('---\n')
    .filter(Boolean)
    .map((c) => c.split('\n').filter(Boolean));
}

const GLOBALS = ['--root', '/run/r', '--log', '/run/log.json', '--log-format', 'json'];

async function mark(t: { context: Ctx }, files: Record<string, string> = {}): Promise<string> {
  const marker = path.join(t.context.state, ID);
  await mkdir(marker);
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(marker, name), content);
  await mkdir(path.join(t.context.dir, 'images'));
  await symlink(path.join(t.context.dir, 'images'), path.join(marker, 'images'));
  return marker;
}

test('without a marker every command reaches runc unchanged', async (t) => {
  const create = [...GLOBALS, 'create', '--bundle', t.context.bundle, '--pid-file', '/run/p', ID];
  const rest = [
    [...GLOBALS, 'start', ID],
    [...GLOBALS, 'state', ID],
    [...GLOBALS, 'kill', ID, '9'],
    [...GLOBALS, 'delete', '--force', ID],
    ['--version'],
  ];
  for (const args of [create, ...rest]) t.is((await run(t, args)).exitCode, 0);
  t.deepEqual(await calls(t), [create, ...rest]);
});

test('a marked create becomes runc restore --detach from the marker, and the start after it does nothing', async (t) => {
  const marker = await mark(t, { flags: '--tcp-established\n--file-locks\n--bogus\n; rm -rf /\n' });
  const create = [
    ...GLOBALS,
    'create',
    '--bundle',
    t.context.bundle,
    '--pid-file',
    '/run/p',
    '--console-socket',
    '/run/console.sock',
    '--no-pivot',
    '--no-new-keyring',
    ID,
  ];
  t.is((await run(t, create)).exitCode, 0);
  t.is((await run(t, [...GLOBALS, 'start', ID])).exitCode, 0);
  // The container's later life is runc's: a second start and create pass through.
  t.is((await run(t, [...GLOBALS, 'start', ID])).exitCode, 0);
  t.deepEqual(await calls(t), [
    [
      ...GLOBALS,
      'restore',
      '--detach',
      '--bundle',
      t.context.bundle,
      '--pid-file',
      '/run/p',
      '--console-socket',
      '/run/console.sock',
      '--no-pivot',
      '--image-path',
      path.join(marker, 'images'),
      '--work-path',
      path.join(marker, 'work'),
      '--tcp-established',
      '--file-locks',
      ID,
    ],
    [...GLOBALS, 'start', ID],
  ]);
  t.is((await readFile(path.join(marker, 'result'), 'utf8')).trim(), '0');
});

test("a marker's CRIU configuration is named to runc through the bundle's org.criu.config annotation", async (t) => {
  for (const spec of [
    { ociVersion: '1.2.0', process: { env: ['X="annotations":{'] } },
    { ociVersion: '1.2.0', annotations: { 'org.example': 'kept' } },
  ]) {
    await rm(path.join(t.context.state, ID), { recursive: true, force: true });
    await rm(path.join(t.context.dir, 'images'), { recursive: true, force: true });
    const marker = await mark(t, { 'criu.conf': 'mntns-compat-mode\n', addresses: '172.17.0.2/16\n' });
    await writeFile(path.join(t.context.bundle, 'config.json'), JSON.stringify(spec));
    t.is((await run(t, [...GLOBALS, 'create', '--bundle', t.context.bundle, ID])).exitCode, 0);
    const after = JSON.parse(await readFile(path.join(t.context.bundle, 'config.json'), 'utf8')) as {
      annotations: Record<string, string>;
      process?: unknown;
    };
    t.is(after.annotations['org.criu.config'], path.join(marker, 'criu.conf'));
    t.deepEqual(
      { ...after, annotations: { ...after.annotations, 'org.criu.config': undefined } },
      {
        ...spec,
        annotations: { ...('annotations' in spec ? spec.annotations : {}), 'org.criu.config': undefined },
      },
    );
    // With addresses, CRIU runs the runtime again as its action script.
    const conf = await readFile(path.join(marker, 'criu.conf'), 'utf8');
    t.regex(conf, /^mntns-compat-mode\naction-script \/.*cryo-runtime$/m);
  }
});

test('as an action script without a marker of its own, it does nothing', async (t) => {
  const result = await run(t, [], { CRTOOLS_SCRIPT_ACTION: 'setup-namespaces', CRTOOLS_INIT_PID: '1' });
  t.is(result.exitCode, 0);
  t.deepEqual(await calls(t), []);
});

test("a marked create whose runc restore hangs is ended at the marker's deadline, and says so", async (t) => {
  await mark(t, { timeout: '1\n' });
  // A runc restore that never returns (CRIU waiting on a page server that is gone, say).
  await writeFile(path.join(t.context.dir, 'runc'), '#!/bin/sh\nexec sleep 600\n');
  const started = performance.now();
  const result = await run(t, [...GLOBALS, 'create', '--bundle', t.context.bundle, ID]);
  const seconds = (performance.now() - started) / 1000;
  t.is(result.exitCode, 124);
  t.regex(result.stderr, /runc restore did not finish within 1 s/);
  t.true(seconds < 15, `${seconds} s`);
  t.is((await readFile(path.join(t.context.state, ID, 'result'), 'utf8')).trim(), '124');
});
