/**
 * CRIU's image files: two magics (u32 each), then entries, each a u32 size and a protobuf message. The
 * protobuf reader here knows just enough for the few messages cryo reads.
 */

/** The protobuf messages of an image file, in order. */
export function* imageEntries(image: Buffer): Generator<Buffer> {
  let i = 8;
  while (i + 4 <= image.length) {
    const size = image.readUInt32LE(i);
    i += 4;
    if (i + size > image.length) throw new Error('truncated image entry');
    yield image.subarray(i, i + size);
    i += size;
  }
}

/** The fields of a protobuf message: varints as bigint, length-delimited as Buffer; others are skipped. */
export function* protobufFields(buf: Buffer): Generator<[number, bigint | Buffer]> {
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const byte = buf[i++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) yield [field, varint()];
    else if (wire === 2) {
      const len = Number(varint());
      yield [field, buf.subarray(i, i + len)];
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return;
  }
}
