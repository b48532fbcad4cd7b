import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import test from 'ava';
import { HttpPeerAgent } from '../../src/adapters/peer/http-peer-agent.js';
import { ApiError } from '../../src/api-client/api-error.js';
import { ApiTransport } from '../../src/api-client/api-transport.js';
import { CliError, CryoClient } from '../../src/cli/cryo-client.js';
import { ErrorCode, TargetError } from '../../src/domain/errors/index.js';
import { freePort } from '../../harness/containers.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A real HTTP server on loopback that answers with `handler`; closed when the test ends. */
async function serve(t: { teardown: (fn: () => void) => void }, handler: Handler): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function errorBody(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** 64 MiB made as it is read: more than a server reads before it refuses. */
function bigBody(): Readable {
  let left = 64;
  const chunk = Buffer.alloc(1 << 20, 1);
  return new Readable({
    read() {
      this.push(left-- > 0 ? chunk : null);
    },
  });
}

test('an error answer becomes an ApiError with the code, message, hint and details of its body', async (t) => {
  const url = await serve(t, (req, res) => {
    t.is(req.headers.authorization, 'Bearer tok');
    errorBody(res, 409, {
      statusCode: 409,
      code: 'CHECKPOINT_IN_USE',
      message: 'busy',
      hint: 'wait',
      details: { a: 1 },
    });
  });
  const err = await t.throwsAsync(new ApiTransport(url, 'tok').call('DELETE', '/v1/checkpoints/x'), {
    instanceOf: ApiError,
  });
  t.like(err, { kind: 'answered', status: 409, code: 'CHECKPOINT_IN_USE', message: 'busy', hint: 'wait' });
  t.deepEqual(err?.details, { a: 1 });
});

test('an answer that is not cryo error JSON names its status', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(502);
    res.end('<html>bad gateway</html>');
  });
  const err = await t.throwsAsync(new ApiTransport(url, 'tok').call('GET', '/v1/host'), {
    instanceOf: ApiError,
  });
  t.like(err, { kind: 'answered', status: 502, code: 'HTTP_502' });
  t.regex(err?.message ?? '', /bad gateway/);
});

test('an upload refused after its first bytes gets the refusal, not a broken pipe', async (t) => {
  const url = await serve(t, (req, res) => {
    req.once('data', () => {
      req.pause();
      errorBody(res, 409, { code: 'CHECKPOINT_NAME_IN_USE', message: 'taken' });
    });
  });
  const transport = new ApiTransport(url, 'tok');
  for (let i = 0; i < 5; i++) {
    const err = await t.throwsAsync(
      transport.call('POST', '/v1/checkpoints', { stream: bigBody(), contentType: 'application/x-tar' }),
      { instanceOf: ApiError },
    );
    t.like(err, { kind: 'answered', code: 'CHECKPOINT_NAME_IN_USE' }, `try ${i}`);
  }
});

test('a dropped connection and a closed port are unreachable', async (t) => {
  const url = await serve(t, (req) => req.socket.destroy());
  const transport = new ApiTransport(url, 'tok');
  const dropped = await t.throwsAsync(transport.call('GET', '/v1/host'), { instanceOf: ApiError });
  t.is(dropped?.kind, 'unreachable');
  const droppedUpload = await t.throwsAsync(
    transport.call('POST', '/v1/checkpoints', { stream: bigBody(), contentType: 'application/x-tar' }),
    { instanceOf: ApiError },
  );
  t.is(droppedUpload?.kind, 'unreachable');
  const closed = `http://127.0.0.1:${await freePort()}`;
  const refused = await t.throwsAsync(new ApiTransport(closed, 'tok').call('GET', '/v1/host'), {
    instanceOf: ApiError,
  });
  t.like(refused, { kind: 'unreachable', code: 'ECONNREFUSED' });
});

test('the CLI maps API errors to CliError, and no answer to CRYO_UNREACHABLE with a hint', async (t) => {
  const url = await serve(t, (_req, res) =>
    errorBody(res, 404, { code: 'CHECKPOINT_NOT_FOUND', message: 'no', hint: 'ls' }),
  );
  const answered = await t.throwsAsync(new CryoClient(url, 'tok').json('GET', '/v1/checkpoints/x'), {
    instanceOf: CliError,
  });
  t.like(answered, { code: 'CHECKPOINT_NOT_FOUND', message: 'no', hint: 'ls' });
  const closed = `http://127.0.0.1:${await freePort()}`;
  const gone = await t.throwsAsync(new CryoClient(closed, 'tok').json('GET', '/v1/checkpoints'), {
    instanceOf: CliError,
  });
  t.is(gone?.code, 'CRYO_UNREACHABLE');
  t.regex(gone?.hint ?? '', /CRYO_URL/);
});

test('the peer agent maps a target error to TARGET_UNAUTHORIZED, TARGET_REFUSED or TARGET_UNREACHABLE', async (t) => {
  const url = await serve(t, (req, res) => {
    if (req.url === '/v1/host') errorBody(res, 401, { code: 'UNAUTHORIZED', message: 'no token' });
    else if (req.url?.startsWith('/v1/images/present')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('not json');
    } else if (req.url === '/v1/checkpoints/gone')
      errorBody(res, 404, { code: 'CHECKPOINT_NOT_FOUND', message: 'no such checkpoint' });
    else if (req.url === '/v1/checkpoints/held')
      errorBody(res, 409, { code: 'CHECKPOINT_IN_USE', message: 'a restore holds it' });
    else errorBody(res, 409, { code: 'CONTAINER_NAME_IN_USE', message: 'busy', hint: 'retry later' });
  });
  const agent = new HttpPeerAgent(url, 'tok');
  const unauthorized = await t.throwsAsync(agent.host(), { instanceOf: TargetError });
  t.is(unauthorized?.code, ErrorCode.TARGET_UNAUTHORIZED);
  t.is(await agent.deleteCheckpoint('gone'), 'absent');
  t.is(await agent.deleteCheckpoint('held'), 'in-use', 'a restore under way is an answer, not a failure');
  const refused = await t.throwsAsync(agent.restore('x', 'web'), { instanceOf: TargetError });
  t.is(refused?.code, ErrorCode.TARGET_REFUSED);
  t.regex(refused?.message ?? '', /CONTAINER_NAME_IN_USE: busy/);
  t.is(refused?.hint, 'retry later');
  const garbled = await t.throwsAsync(agent.hasImage({ id: 'sha256:1', ref: 'img:1' }), {
    instanceOf: TargetError,
  });
  t.is(garbled?.code, ErrorCode.TARGET_REFUSED, 'a body that is not JSON is refused, never a crash');
  const closed = new HttpPeerAgent(`http://127.0.0.1:${await freePort()}`, 'tok');
  const unreachable = await t.throwsAsync(closed.host(), { instanceOf: TargetError });
  t.is(unreachable?.code, ErrorCode.TARGET_UNREACHABLE);
});
