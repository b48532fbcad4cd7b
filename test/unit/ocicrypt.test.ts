import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { loadRecipientKeys } from '../../src/adapters/ocicrypt/jwe-key-wrap.js';
import {
  OcicryptAnnotation,
  OcicryptLayerEncryption,
} from '../../src/adapters/ocicrypt/ocicrypt-layer-encryption.js';
import { ErrorCode } from '../../src/domain/errors/index.js';

/** Two RSA key pairs as PEM files, with encryption set up for the first and decryption with `decryptWith`. */
async function setUp(t: { teardown: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-test-ocicrypt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = async (name: string) => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pub = path.join(dir, `${name}.pub.pem`);
    const priv = path.join(dir, `${name}.pem`);
    await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    return { pub, priv };
  };
  const [a, b] = await Promise.all([files('a'), files('b')]);
  const sealing = new OcicryptLayerEncryption(await loadRecipientKeys([a.pub], []));
  const opener = async (priv: string[]) => new OcicryptLayerEncryption(await loadRecipientKeys([], priv));
  return { a, b, sealing, opener };
}

const collect = async (stream: NodeJS.ReadableStream): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('a layer sealed for a key opens with its private key: the same bytes, checked by MAC and digest', async (t) => {
  const { a, sealing, opener } = await setUp(t);
  const plain = randomBytes(300_000);
  const seal = sealing.seal();
  const { stream, finish } = sealing.encrypt(seal);
  const cipher = await collect(Readable.from([plain.subarray(0, 1000), plain.subarray(1000)]).pipe(stream));
  const { digest, annotations, plainDigest } = finish();
  t.is(plainDigest, digestOf(plain));
  t.is(cipher.length, plain.length, 'CTR keeps the size');
  t.false(cipher.includes(plain.subarray(0, 64)));
  t.is(digest, digestOf(cipher));
  const pub = JSON.parse(Buffer.from(annotations[OcicryptAnnotation.PUBOPTS]!, 'base64').toString('utf8'));
  t.is(pub.cipher, 'AES_256_CTR_HMAC_SHA256');

  // The same seal makes the same blob: a level pushed again is found in the registry.
  const again = sealing.encrypt(seal);
  t.deepEqual(await collect(Readable.from([plain]).pipe(again.stream)), cipher);

  const opening = await (await opener([a.priv])).open(annotations);
  t.is(opening.plainDigest, digestOf(plain));
  t.deepEqual(await collect(Readable.from([cipher]).pipe(opening.decrypt)), plain);
  t.notThrows(() => opening.verify());
});

test('the wrong key, no key, or a flipped byte of the blob is REGISTRY_DECRYPTION_FAILED', async (t) => {
  const { a, b, sealing, opener } = await setUp(t);
  const plain = randomBytes(50_000);
  const seal = sealing.seal();
  const { stream, finish } = sealing.encrypt(seal);
  const cipher = await collect(Readable.from([plain]).pipe(stream));
  const { annotations } = finish();
  const code = { code: ErrorCode.REGISTRY_DECRYPTION_FAILED };
  await t.throwsAsync((await opener([b.priv])).open(annotations), { ...code, message: /none of the/ });
  await t.throwsAsync((await opener([])).open(annotations), { ...code, message: /no decryption key/ });
  await t.throwsAsync((await opener([a.priv])).open({}), { ...code, message: /no wrapped key/ });

  const flipped = Buffer.from(cipher);
  flipped[1234] = flipped[1234]! ^ 1;
  const opening = await (await opener([b.priv, a.priv])).open(annotations);
  await collect(Readable.from([flipped]).pipe(opening.decrypt));
  t.throws(() => opening.verify(), { ...code, message: /MAC/ });
});
