import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { execa } from 'execa';
import { streamRequest } from '../../src/api-client/stream-request.js';
import { repoRoot } from '../../harness/prerequisites.js';

const CHUNK = Buffer.alloc(1024 * 1024, 7);

/** 256 MiB, made as it is read: far more than the server reads before it refuses. */
function bigBody(): Readable {
  let left = 256;
  return new Readable({
    read() {
      this.push(left-- > 0 ? CHUNK : null);
    },
  });
}

// The server is a process of its own, as cryo is for its clients: in one process the refusal is always read
// before the broken pipe, and the test would prove nothing.
const SERVER = `
import http from 'node:http';
import { drainRefusedUpload } from ${JSON.stringify(path.join(repoRoot, 'dist/src/http/drain-refused-upload.js'))};
const server = http.createServer((req, res) => {
  req.once('data', () => {
    req.pause();
    res.writeHead(409, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ code: 'CHECKPOINT_NAME_IN_USE' }));
    drainRefusedUpload(req);
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

test('an upload refused after its first bytes gets the refusal, every time, not a broken pipe', async (t) => {
  const server = execa('node', ['--input-type=module', '-e', SERVER], { buffer: false, reject: false });
  t.teardown(() => server.kill());
  const port = await new Promise<string>((resolve) =>
    server.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())),
  );
  for (let i = 0; i < 20; i++) {
    const answer = await streamRequest(
      'POST',
      `http://127.0.0.1:${port}/v1/checkpoints`,
      { 'content-type': 'application/x-tar' },
      bigBody(),
    );
    t.is(answer.status, 409, `try ${i}`);
    t.deepEqual(JSON.parse(answer.text), { code: 'CHECKPOINT_NAME_IN_USE' });
  }
});
