import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { Transform } from 'node:stream';
import { RegistryDecryptionFailedError } from '../../domain/errors/index.js';
import type { LayerEncryption, LayerOpening, LayerSeal } from '../../services/ports/layer-encryption.js';
import { unwrapOptions, wrapOptions, type RecipientKeys } from './jwe-key-wrap.js';

/** containers/ocicrypt's names (spec/spec.go, blockcipher/blockcipher.go). */
export const OcicryptAnnotation = {
  KEYS_JWE: 'org.opencontainers.image.enc.keys.jwe',
  PUBOPTS: 'org.opencontainers.image.enc.pubopts',
} as const;
const AES256CTR = 'AES_256_CTR_HMAC_SHA256';

/** What the JWE wraps (PrivateLayerBlockCipherOptions: Go's []byte as base64). */
interface PrivateOptions {
  symkey: string;
  digest: string;
  cipheroptions: { nonce: string };
}

/** What the descriptor carries in the clear (PublicLayerBlockCipherOptions). */
interface PublicOptions {
  cipher: string;
  hmac: string;
  cipheroptions: Record<string, string>;
}

/**
 * AES-256-CTR with an HMAC-SHA256 of the ciphertext under the same key, the key and nonce wrapped in a JWE
 * (RSA-OAEP, A256GCM) per recipient: ocicrypt's format, which `skopeo copy --decryption-key` reads.
 */
export class OcicryptLayerEncryption implements LayerEncryption {
  readonly recipients: string | undefined;

  constructor(private readonly keys: RecipientKeys) {
    this.recipients =
      keys.publicKeys.length === 0
        ? undefined
        : createHash('sha256')
            .update(keys.publicKeys.map((k) => k.fingerprint).join(','))
            .digest('hex')
            .slice(0, 32);
  }

  seal(): Pick<LayerSeal, 'recipients' | 'key' | 'nonce'> {
    if (!this.recipients) throw new Error('no encryption key is configured');
    return {
      recipients: this.recipients,
      key: randomBytes(32).toString('base64'),
      nonce: randomBytes(16).toString('base64'),
    };
  }

  encrypt(seal: Pick<LayerSeal, 'key' | 'nonce'>): {
    stream: Transform;
    finish: () => Pick<LayerSeal, 'plainDigest' | 'digest' | 'annotations'>;
  } {
    const key = Buffer.from(seal.key, 'base64');
    const cipher = createCipheriv('aes-256-ctr', key, Buffer.from(seal.nonce, 'base64'));
    const mac = createHmac('sha256', key);
    const digest = createHash('sha256');
    const plain = createHash('sha256');
    let done: Pick<LayerSeal, 'plainDigest' | 'digest' | 'annotations'> | undefined;
    let wrapped: string | undefined;
    const keys = this.keys;
    const stream = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        plain.update(chunk);
        const out = cipher.update(chunk);
        mac.update(out);
        digest.update(out);
        cb(null, out);
      },
      flush(cb) {
        const tail = cipher.final();
        mac.update(tail);
        digest.update(tail);
        const plainDigest = `sha256:${plain.digest('hex')}`;
        const pub: PublicOptions = { cipher: AES256CTR, hmac: mac.digest('base64'), cipheroptions: {} };
        const priv: PrivateOptions = {
          symkey: seal.key,
          digest: plainDigest,
          cipheroptions: { nonce: seal.nonce },
        };
        wrapOptions(keys, Buffer.from(JSON.stringify(priv))).then(
          (jwe) => {
            wrapped = jwe;
            done = {
              plainDigest,
              digest: `sha256:${digest.digest('hex')}`,
              annotations: {
                [OcicryptAnnotation.KEYS_JWE]: wrapped,
                [OcicryptAnnotation.PUBOPTS]: Buffer.from(JSON.stringify(pub)).toString('base64'),
              },
            };
            cb(null, tail);
          },
          (err: unknown) => cb(err as Error),
        );
      },
    });
    return {
      stream,
      finish: () => {
        if (!done) throw new Error('the encrypted layer was not read to its end');
        return done;
      },
    };
  }

  async open(annotations: Record<string, string> | undefined): Promise<LayerOpening> {
    const wrapped = annotations?.[OcicryptAnnotation.KEYS_JWE];
    const pubText = annotations?.[OcicryptAnnotation.PUBOPTS];
    if (!wrapped || !pubText)
      throw new RegistryDecryptionFailedError('it names no wrapped key (ocicrypt jwe)');
    if (this.keys.privateKeys.length === 0)
      throw new RegistryDecryptionFailedError('it is encrypted, and no decryption key is configured');
    let pub: PublicOptions;
    try {
      pub = JSON.parse(Buffer.from(pubText, 'base64').toString('utf8')) as PublicOptions;
    } catch {
      throw new RegistryDecryptionFailedError('its public cipher options are not JSON');
    }
    if (pub.cipher !== AES256CTR)
      throw new RegistryDecryptionFailedError(`its cipher ${pub.cipher} is not ${AES256CTR}`);
    const priv = JSON.parse((await unwrapOptions(this.keys, wrapped)).toString('utf8')) as PrivateOptions;
    const key = Buffer.from(priv.symkey ?? '', 'base64');
    const nonce = Buffer.from(priv.cipheroptions?.nonce ?? '', 'base64');
    if (key.length !== 32 || nonce.length !== 16)
      throw new RegistryDecryptionFailedError('its wrapped options hold no AES-256 key and nonce');
    const decipher = createDecipheriv('aes-256-ctr', key, nonce);
    const mac = createHmac('sha256', key);
    const plain = createHash('sha256');
    let ended = false;
    const decrypt = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        mac.update(chunk);
        const out = decipher.update(chunk);
        plain.update(out);
        cb(null, out);
      },
      flush(cb) {
        const tail = decipher.final();
        plain.update(tail);
        ended = true;
        cb(null, tail);
      },
    });
    const expected = Buffer.from(pub.hmac ?? '', 'base64');
    return {
      decrypt,
      plainDigest: priv.digest,
      verify: () => {
        if (!ended) throw new RegistryDecryptionFailedError('the layer ended early');
        const got = mac.digest();
        if (got.length !== expected.length || !timingSafeEqual(got, expected))
          throw new RegistryDecryptionFailedError(
            'its MAC does not match: the blob is not what was encrypted',
          );
        const digest = `sha256:${plain.digest('hex')}`;
        if (digest !== priv.digest)
          throw new RegistryDecryptionFailedError(
            `it decrypts to ${digest}, not the ${priv.digest} it was sealed from`,
          );
      },
    };
  }
}
