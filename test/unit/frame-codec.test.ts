import { randomBytes } from 'node:crypto';
import test from 'ava';
import { MAX_FRAME_BYTES, type Frame } from '../../src/domain/sidecar/protocol.js';
import {
  encodeFrame,
  FrameDecoder,
  ProtocolError,
  type ProtocolErrorCode,
} from '../../src/domain/sidecar/frame-codec.js';

const ack: Frame = {
  v: 1,
  type: 'ack',
  checkpointId: 7,
  operator: 'count',
  subtask: 1,
  handles: [{ name: 'a.state', keyGroupRange: { start: 64, end: 127 }, size: 3, sha256: 'a'.repeat(64) }],
  offsets: { 'input.txt': 1200 },
};
const state: Frame = {
  v: 1,
  type: 'state',
  checkpointId: 7,
  operator: 'count',
  subtask: 1,
  name: 'a.state',
  size: 3,
};

test('frames round-trip, also when the bytes arrive one at a time', (t) => {
  const bytes = Buffer.concat([
    encodeFrame(state, Buffer.from([0, 10, 255])),
    encodeFrame(ack),
    encodeFrame({ v: 1, type: 'complete', checkpointId: 7 }),
  ]);
  for (const step of [bytes.length, 1, 5]) {
    const decoder = new FrameDecoder();
    const out = [];
    for (let i = 0; i < bytes.length; i += step) out.push(...decoder.push(bytes.subarray(i, i + step)));
    t.deepEqual(
      out.map((d) => d.frame.type),
      ['state', 'ack', 'complete'],
    );
    t.deepEqual([...(out[0]!.payload ?? [])], [0, 10, 255], 'the state bytes, newline included, are data');
    t.deepEqual(out[1]!.frame, ack);
  }
});

test('malformed frames, unknown versions, invalid and oversized frames are protocol errors, and the decoder stays failed', (t) => {
  const cases: [string | Buffer, ProtocolErrorCode][] = [
    ['not json\n', 'MALFORMED_FRAME'],
    ['[1,2]\n', 'MALFORMED_FRAME'],
    ['{"type":"complete","checkpointId":1}\n', 'UNKNOWN_VERSION'],
    ['{"v":2,"type":"complete","checkpointId":1}\n', 'UNKNOWN_VERSION'],
    ['{"v":1,"type":"launch"}\n', 'INVALID_FRAME'],
    ['{"v":1,"type":"complete","checkpointId":-1}\n', 'INVALID_FRAME'],
    ['{"v":1,"type":"complete","checkpointId":1,"extra":true}\n', 'INVALID_FRAME'],
    [
      '{"v":1,"type":"state","checkpointId":1,"operator":"x","subtask":0,"name":"n","size":1e12}\n',
      'INVALID_FRAME',
    ],
    ['{"v":1,"type":"ack","checkpointId":1,"operator":"../x","subtask":0,"handles":[]}\n', 'INVALID_FRAME'],
    [Buffer.alloc(MAX_FRAME_BYTES + 2, 0x20), 'FRAME_TOO_LARGE'],
  ];
  for (const [input, code] of cases) {
    const decoder = new FrameDecoder();
    const err = t.throws(() => decoder.push(Buffer.isBuffer(input) ? input : Buffer.from(input)), {
      instanceOf: ProtocolError,
    });
    t.is(err?.code, code, String(input).slice(0, 80));
    t.throws(() => decoder.push(encodeFrame({ v: 1, type: 'complete', checkpointId: 1 })), {
      instanceOf: ProtocolError,
    });
  }
});

test('fuzzing: random and mutated bytes never throw anything but a ProtocolError', (t) => {
  const good = Buffer.concat([encodeFrame(ack), encodeFrame(state, Buffer.from('xyz'))]);
  let errors = 0;
  for (let round = 0; round < 2000; round++) {
    const input = Buffer.from(round % 2 === 0 ? randomBytes(1 + (round % 300)) : good);
    if (round % 2 === 1)
      for (let m = 0; m < 1 + (round % 5); m++) input[(round * 31 + m * 17) % input.length] = round & 0xff;
    const decoder = new FrameDecoder(4096);
    try {
      for (let i = 0; i < input.length; i += 7) decoder.push(input.subarray(i, i + 7));
    } catch (err) {
      t.true(err instanceof ProtocolError, String(err));
      errors++;
    }
  }
  t.true(errors > 1000);
});
