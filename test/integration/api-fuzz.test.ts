import fc from 'fast-check';
import anyTest, { type TestFn } from 'ava';
import { CryoProcess } from '../../harness/cryo-process.js';
import { requirePrerequisites } from '../../harness/prerequisites.js';

// Every route and parameter of cryo's own OpenAPI document gets malformed values, against cryo as a process of
// its own on the real dockerd: no answer may be a 5xx, every 4xx carries {code, message}, nothing hangs, and
// cryo lives on. fast-check draws the requests from a printed seed (CRYO_FUZZ_SEED replays one run, and
// CRYO_FUZZ_REQUESTS sets how many).
interface Ctx {
  cryo: CryoProcess;
  operations: Operation[];
}
const test = anyTest as TestFn<Ctx>;

interface Operation {
  method: string;
  path: string;
  params: string[];
  query: string[];
  hasBody: boolean;
}

const REQUESTS = Number(process.env.CRYO_FUZZ_REQUESTS ?? 5000);
const SEED = Number(process.env.CRYO_FUZZ_SEED ?? Date.now() % 2 ** 31);
const TIMEOUT_MS = 10_000;
/** Above Linux's largest pid_max: a fuzzed pid must never name a real process, which a dump would stop. */
const NO_SUCH_PID = 2 ** 22 + 1;

test.before(async (t) => {
  await requirePrerequisites();
  const cryo = await CryoProcess.start();
  const doc = (await cryo.api('GET', '/openapi.json')) as {
    paths: Record<
      string,
      Record<string, { parameters?: { in: string; name: string }[]; requestBody?: unknown }>
    >;
  };
  const operations: Operation[] = [];
  for (const [p, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const parameters = op.parameters ?? [];
      operations.push({
        method: method.toUpperCase(),
        path: p,
        params: parameters.filter((x) => x.in === 'path').map((x) => x.name),
        query: parameters.filter((x) => x.in === 'query').map((x) => x.name),
        hasBody: op.requestBody !== undefined,
      });
    }
  }
  t.context = { cryo, operations };
});

test.after.always(async (t) => {
  await t.context.cryo?.stop();
});

const hostile = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '..',
    '../../etc/passwd',
    '%2e%2e%2f%2e%2e%2fetc',
    '/etc/passwd',
    'a'.repeat(300),
    '-1',
    '0',
    '1e309',
    'NaN',
    'null',
    '{}',
    '\u0000',
    'a\nb',
    '😀',
    '$(id)',
    '; rm -rf /',
  ),
);

const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(
    fc.constantFrom(
      'name',
      'leaveRunning',
      'target',
      'targetToken',
      'cron',
      'container',
      'mode',
      'ports',
      'retain',
    ),
    fc.oneof(hostile, fc.integer(), fc.boolean(), fc.constant(null), fc.array(hostile, { maxLength: 3 })),
  ),
);

function pathWith(op: Operation, values: string[]): string {
  let i = 0;
  return op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = values[i++] ?? 'x';
    // A pid that is a plain integer could be a real process: keep those above pid_max.
    if (name === 'pid' && /^\s*\+?\d+\s*$/.test(v)) return String(NO_SUCH_PID + (Number(v) % 1000));
    return encodeURIComponent(v);
  });
}

const request = (ops: Operation[]) =>
  fc.record({
    op: fc.constantFrom(...ops),
    params: fc.array(hostile, { minLength: 3, maxLength: 3 }),
    query: fc.array(
      fc.tuple(
        fc.constantFrom('id', 'container', 'compress', 'tcpEstablished', 'deleteCheckpoints', 'x'),
        hostile,
      ),
      {
        maxLength: 3,
      },
    ),
    body: fc.option(
      fc.oneof(
        jsonBody.map((b) => ({ type: 'application/json', data: JSON.stringify(b) })),
        fc.string({ maxLength: 200 }).map((s) => ({ type: 'application/json', data: s })),
        fc.string({ maxLength: 200 }).map((s) => ({ type: 'text/plain', data: s })),
        fc.uint8Array({ maxLength: 2048 }).map((b) => ({ type: 'application/x-tar', data: Buffer.from(b) })),
      ),
    ),
  });

test.serial(
  'malformed values on every route: no 5xx, every 4xx with code and message, no hang, no crash',
  async (t) => {
    const { cryo, operations } = t.context;
    t.log(`seed ${SEED}, ${REQUESTS} requests over ${operations.length} operations`);
    const samples = fc.sample(request(operations), { seed: SEED, numRuns: REQUESTS });
    const statuses = new Map<number, number>();
    const bad: string[] = [];
    for (const s of samples) {
      const query = new URLSearchParams(s.query.map(([k, v]): [string, string] => [k, v])).toString();
      const url = `${cryo.url}${pathWith(s.op, s.params)}${query ? `?${query}` : ''}`;
      const headers: Record<string, string> = { authorization: `Bearer ${cryo.token}` };
      if (s.body) headers['content-type'] = s.body.type;
      let status: number;
      let text: string;
      try {
        const res = await fetch(url, {
          method: s.op.method,
          headers,
          ...(s.body && s.op.method !== 'GET' && s.op.method !== 'HEAD' ? { body: s.body.data } : {}),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        status = res.status;
        text = await res.text();
      } catch (err) {
        bad.push(`${s.op.method} ${url}: no answer (${(err as Error).message})`);
        if (cryo.exited) break;
        continue;
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status >= 500) bad.push(`${s.op.method} ${url}: ${status} ${text.slice(0, 200)}`);
      if (status >= 400 && status < 500) {
        let body: { code?: unknown; message?: unknown } | undefined;
        try {
          body = JSON.parse(text) as typeof body;
        } catch {
          body = undefined;
        }
        if (typeof body?.code !== 'string' || typeof body.message !== 'string')
          bad.push(`${s.op.method} ${url}: ${status} without {code, message}: ${text.slice(0, 200)}`);
      }
    }
    t.log(`answers: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    t.false(cryo.exited, 'cryo is still running');
    t.deepEqual(bad.slice(0, 20), [], `${bad.length} bad answers (seed ${SEED})`);
  },
);

test.serial('every route but health refuses a missing or wrong token with 401', async (t) => {
  const { cryo, operations } = t.context;
  let checked = 0;
  for (const op of operations) {
    const url = `${cryo.url}${pathWith(op, ['x', 'y', 'z'])}`;
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }] as Record<
      string,
      string
    >[]) {
      const res = await fetch(url, { method: op.method, headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
      const expected = op.path === '/v1/health' ? 200 : 401;
      t.is(res.status, expected, `${op.method} ${op.path}`);
      await res.arrayBuffer();
      checked++;
    }
  }
  t.true(checked >= 2 * 20, `${checked} requests`);
});
