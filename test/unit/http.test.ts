import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import anyTest, { type TestFn } from 'ava';
import type { FastifyInstance } from 'fastify';
import { openDatabase, type Db } from '../../src/adapters/store/database.js';
import { buildApp } from '../../src/http/app.js';
import { systemClock } from '../../src/services/ports/clock.js';
import { fakeServices } from './fake-services.js';
import { sleep } from '../../harness/containers.js';
import type { FakeRuntime } from './fakes.js';
import { ErrorCode } from '../../src/domain/errors/index.js';
import { writeTar } from '../../harness/tar.js';

const TOKEN = 'unit-test-token-0123456789';
const test = anyTest as TestFn<{
  app: FastifyInstance;
  runtime: FakeRuntime;
  dir: string;
  db: Db;
}>;

test.beforeEach(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-http-'));
  const db = openDatabase(path.join(dir, 'cryo.db'));
  const services = await fakeServices(dir, db, systemClock);
  const app = await buildApp({ ...services, token: TOKEN, logLevel: 'silent' });
  const { runtime } = services;
  t.context = { app, runtime, dir, db };
});

test.afterEach.always(async (t) => {
  await t.context.app.close();
  t.context.db.close();
  await rm(t.context.dir, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TOKEN}` };

test('health needs no token; everything else does', async (t) => {
  const { app } = t.context;
  const health = await app.inject({ method: 'GET', url: '/v1/health' });
  t.is(health.statusCode, 200);
  t.is(health.json().status, 'ok');
  for (const [method, url] of [
    ['GET', '/v1/checkpoints'],
    ['POST', '/v1/containers/web/checkpoints'],
    ['GET', '/openapi.json'],
    ['GET', '/docs'],
  ] as const) {
    const res = await app.inject({ method, url });
    t.is(res.statusCode, 401, `${method} ${url}`);
    t.is(res.json().code, ErrorCode.UNAUTHORIZED);
    t.truthy(res.json().hint);
  }
  const wrong = await app.inject({
    method: 'GET',
    url: '/v1/checkpoints',
    headers: { authorization: 'Bearer nope' },
  });
  t.is(wrong.statusCode, 401);
  const basic = await app.inject({
    method: 'GET',
    url: '/v1/checkpoints',
    headers: { authorization: `Basic ${TOKEN}` },
  });
  t.is(basic.statusCode, 401);
});

test('app errors map to their status with code, message and hint', async (t) => {
  const { app } = t.context;
  const res = await app.inject({ method: 'POST', url: '/v1/containers/ghost/checkpoints', headers: auth });
  t.is(res.statusCode, 404);
  t.like(res.json(), { statusCode: 404, code: ErrorCode.CONTAINER_NOT_FOUND });
  t.truthy(res.json().hint);
  const route = await app.inject({ method: 'GET', url: '/v1/nothing', headers: auth });
  t.is(route.statusCode, 404);
  t.is(route.json().code, ErrorCode.ROUTE_NOT_FOUND);
});

test('validation failures are 400 VALIDATION_FAILED with details', async (t) => {
  const { app, runtime } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/containers/web/checkpoints',
    headers: auth,
    payload: { name: '../x' },
  });
  t.is(res.statusCode, 400);
  t.is(res.json().code, ErrorCode.VALIDATION_FAILED);
  t.true(Array.isArray(res.json().details));
  t.deepEqual(runtime.calls, [], 'nothing was attempted');
  const json = await app.inject({
    method: 'POST',
    url: '/v1/containers/web/checkpoints',
    headers: { ...auth, 'content-type': 'application/json' },
    payload: '{not json',
  });
  t.is(json.statusCode, 400);
  t.is(json.json().code, ErrorCode.VALIDATION_FAILED);
});

test('create, list, get, restore and delete through the routes', async (t) => {
  const { app, runtime } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const created = await app.inject({ method: 'POST', url: '/v1/containers/web/checkpoints', headers: auth });
  t.is(created.statusCode, 201);
  const id = created.json().id as string;
  t.is(
    (await app.inject({ method: 'GET', url: '/v1/checkpoints?container=web', headers: auth })).json()
      .checkpoints.length,
    1,
  );
  t.is((await app.inject({ method: 'GET', url: `/v1/checkpoints/${id}`, headers: auth })).json().id, id);
  const restored = await app.inject({ method: 'POST', url: `/v1/checkpoints/${id}/restore`, headers: auth });
  t.is(restored.statusCode, 201);
  t.is(restored.json().container.name, 'web');
  const del = await app.inject({ method: 'DELETE', url: `/v1/checkpoints/${id}`, headers: auth });
  t.is(del.statusCode, 204);
  t.is(del.body, '');
  t.is((await app.inject({ method: 'GET', url: `/v1/checkpoints/${id}`, headers: auth })).statusCode, 404);
});

test('a restore with abandonOnDisconnect whose caller goes away removes its new container; the checkpoint stays', async (t) => {
  const { app, runtime } = t.context;
  runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const created = await app.inject({ method: 'POST', url: '/v1/containers/web/checkpoints', headers: auth });
  const id = created.json().id as string;
  const refused = await app.inject({
    method: 'POST',
    url: `/v1/checkpoints/${id}/restore`,
    headers: auth,
    payload: { abandonOnDisconnect: true },
  });
  t.is(refused.statusCode, 400, 'only a new container can be abandoned');
  t.is(refused.json().code, ErrorCode.VALIDATION_FAILED);

  let release!: () => void;
  runtime.restoreGate = new Promise((r) => (release = r));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const caller = new AbortController();
  const answer = fetch(`${url}/v1/checkpoints/${id}/restore`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'web-b', abandonOnDisconnect: true }),
    signal: caller.signal,
  });
  while (!runtime.calls.includes(`restore ${'newweb-b'.padEnd(64, '0')}`)) await sleep(5);
  caller.abort();
  await t.throwsAsync(answer, { any: true, name: 'AbortError' });
  await sleep(50);
  release();
  const newId = 'newweb-b'.padEnd(64, '0');
  for (let i = 0; i < 200 && !runtime.calls.includes(`remove ${newId}`); i++) await sleep(10);
  t.false(runtime.containers.has(newId), 'the copy nobody was told about does not run on');
  t.is((await app.inject({ method: 'GET', url: `/v1/checkpoints/${id}`, headers: auth })).statusCode, 200);

  // The same restore with its caller still there answers, and the container stays.
  const kept = await fetch(`${url}/v1/checkpoints/${id}/restore`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'web-b', abandonOnDisconnect: true }),
  });
  t.is(kept.status, 201);
  t.true(runtime.containers.get(newId)?.running);
});

test('the OpenAPI document describes the public contract', async (t) => {
  const { app } = t.context;
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json', headers: auth })).json();
  for (const p of [
    '/v1/health',
    '/v1/containers/{ref}/checkpoints',
    '/v1/checkpoints',
    '/v1/checkpoints/{id}',
    '/v1/checkpoints/{id}/restore',
  ]) {
    t.truthy(doc.paths[p], p);
  }
});

test('streaming routes take only their media types; a parsed body never reaches Docker', async (t) => {
  const { app, runtime } = t.context;
  for (const [url, type, payload] of [
    ['/v1/images', 'application/json', '{}'],
    ['/v1/images', 'text/plain', '/etc/hostname'],
    ['/v1/images', 'application/gzip', 'x'],
    ['/v1/checkpoints', 'text/plain', '/etc/hostname'],
    ['/v1/checkpoints', 'application/json', '{}'],
    ['/v1/checkpoints', 'application/xml', '<a/>'],
  ] as const) {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: { ...auth, 'content-type': type },
      payload,
    });
    t.is(res.statusCode, 415, `${url} ${type}`);
    t.is(res.json().code, ErrorCode.UNSUPPORTED_MEDIA_TYPE);
    t.regex(res.json().hint, /application\/x-tar/);
  }
  const untyped = await app.inject({ method: 'POST', url: '/v1/images', headers: auth, payload: 'x' });
  t.is(untyped.statusCode, 415);
  t.is(untyped.json().code, ErrorCode.UNSUPPORTED_MEDIA_TYPE);
  t.deepEqual(runtime.calls, [], 'nothing reached the runtime');
  const noToken = await app.inject({
    method: 'POST',
    url: '/v1/images',
    headers: { 'content-type': 'application/json' },
    payload: '{}',
  });
  t.is(noToken.statusCode, 401, 'the token is checked first');
});

test("requests that Node's HTTP parser refuses get cryo's JSON error body", async (t) => {
  const { app } = t.context;
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const raw = (request: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(request));
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
  const body = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

  const long = await raw(`GET /v1/checkpoints?x=${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`);
  t.regex(long, /^HTTP\/1\.1 431 /);
  t.like(body(long), { statusCode: 431, code: ErrorCode.HEADERS_TOO_LARGE });
  t.truthy(body(long).hint);

  const malformed = await raw('NOT A REQUEST\r\n\r\n');
  t.regex(malformed, /^HTTP\/1\.1 400 /);
  t.like(body(malformed), { statusCode: 400, code: ErrorCode.MALFORMED_REQUEST });
  t.truthy(body(malformed).message);
});

test('a pid in a path is decimal digits only: 0x10, 1e0, +1, 1.0 and 0b1 are refused, never read as numbers', async (t) => {
  const { app } = t.context;
  for (const pid of ['0x10', '0x1', '1e0', '+1', '1.0', '0b1', '%2016', '16%20', '-16', '1_6', '']) {
    for (const [method, suffix] of [
      ['GET', ''],
      ['GET', '/preflight'],
      ['POST', '/checkpoints'],
    ] as const) {
      const url = `/v1/processes/${pid}${suffix}`;
      const res = await app.inject({
        method,
        url,
        headers: auth,
        ...(method === 'POST' ? { payload: {} } : {}),
      });
      t.true([400, 404].includes(res.statusCode), `${method} ${url}: ${res.statusCode}`);
      if (pid !== '') t.is(res.json().code, ErrorCode.VALIDATION_FAILED, `${method} ${url}`);
    }
  }
  const decimal = await app.inject({ method: 'GET', url: '/v1/processes/16', headers: auth });
  t.not(decimal.json().code, ErrorCode.VALIDATION_FAILED, 'a decimal pid passes validation');
});

test('a request body that stops arriving is answered 408 at its deadline: a short body, a chunk of 2^64 bytes', async (t) => {
  const services = await fakeServices(t.context.dir, t.context.db, systemClock);
  services.runtime.add({ id: 'c'.repeat(64), name: 'web' });
  const app = await buildApp({ ...services, token: TOKEN, logLevel: 'silent', bodyTimeoutMs: 500 });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  // The client sends what it sends, then stays connected and silent.
  const stalled = (request: string | Buffer) =>
    new Promise<{ answer: string; ms: number }>((resolve, reject) => {
      const started = performance.now();
      const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      socket.on('close', () => resolve({ answer, ms: performance.now() - started }));
      socket.on('error', reject);
      setTimeout(() => socket.destroy(new Error('no answer in 20 s')), 20_000).unref();
    });
  const head = (path: string, type: string, extra: string) =>
    `POST ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: ${type}\r\n${extra}\r\n`;

  const shortJson = await stalled(
    `${head('/v1/containers/web/checkpoints', 'application/json', 'content-length: 100\r\n')}{"leaveR`,
  );
  // A tar whose first entry announces 2000 bytes, cut after 188 of them.
  const tarStart = (
    await writeTar([{ header: { name: 'cryo.json' }, body: Buffer.alloc(2000, 0x20) }])
  ).subarray(0, 700);
  const shortTar = await stalled(
    Buffer.concat([
      Buffer.from(head('/v1/checkpoints', 'application/x-tar', 'content-length: 1048576\r\n')),
      tarStart,
    ]),
  );
  const hugeChunk = await stalled(
    `${head('/v1/checkpoints', 'application/x-tar', 'transfer-encoding: chunked\r\n')}ffffffffffffffff\r\n${'x'.repeat(1000)}`,
  );
  for (const [what, { answer, ms }] of Object.entries({ shortJson, shortTar, hugeChunk })) {
    const status = /^HTTP\/1\.1 (\d+)/.exec(answer)?.[1];
    t.true(status === '408' || status === '400', `${what}: ${answer.slice(0, 200)} after ${ms} ms`);
    if (status === '408') {
      t.like(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), { code: ErrorCode.REQUEST_TIMEOUT });
      t.true(ms >= 400 && ms < 10_000, `${what}: answered after ${ms} ms`);
    }
  }
  t.regex(shortJson.answer, /^HTTP\/1\.1 408 /, 'a short JSON body waits for the deadline, then 408');
  t.regex(shortTar.answer, /^HTTP\/1\.1 408 /, 'an upload that stops is cut at the deadline');
  t.deepEqual(services.runtime.calls, [], 'nothing was checkpointed from half a body');
});
