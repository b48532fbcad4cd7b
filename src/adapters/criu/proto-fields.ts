/** A field of a protobuf message: a varint's value, or the bytes of a length-delimited or fixed field. */
export interface ProtoField {
  field: number;
  value: number | Buffer;
}

/** Every field of one protobuf message, in order (CRIU's images: varints, strings, packed lists, fixed64). */
export function protoFields(buf: Buffer, name: string): ProtoField[] {
  const out: ProtoField[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && at < buf.length; i++) {
      const b = buf[at++]!;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return value;
    }
    throw new Error(`${name} has a malformed varint`);
  };
  const bytes = (n: number): Buffer => {
    if (at + n > buf.length) throw new Error(`${name} ends inside a field`);
    const b = buf.subarray(at, at + n);
    at += n;
    return b;
  };
  while (at < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key % 8) {
      case 0:
        out.push({ field, value: varint() });
        break;
      case 1:
        out.push({ field, value: bytes(8) });
        break;
      case 2:
        out.push({ field, value: bytes(varint()) });
        break;
      case 5:
        out.push({ field, value: bytes(4) });
        break;
      default:
        throw new Error(`${name} has a field of wire type ${key % 8}`);
    }
  }
  return out;
}
