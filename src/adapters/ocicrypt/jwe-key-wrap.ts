import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { FlattenedEncrypt, flattenedDecrypt, generalDecrypt } from 'jose';
import { RegistryDecryptionFailedError } from '../../domain/errors/index.js';

export interface RecipientKeys {
  publicKeys: { key: KeyObject; fingerprint: string }[];
  privateKeys: KeyObject[];
}

/** RSA public keys to encrypt for, private keys to decrypt with (PEM files, as skopeo's jwe: keys). */
export async function loadRecipientKeys(
  publicFiles: string[],
  privateFiles: string[],
): Promise<RecipientKeys> {
  const publicKeys = await Promise.all(
    publicFiles.map(async (file) => {
      const key = createPublicKey(await readFile(file));
      if (key.asymmetricKeyType !== 'rsa') throw new Error(`${file}: an RSA public key is needed`);
      const der = key.export({ type: 'spki', format: 'der' });
      return { key, fingerprint: createHash('sha256').update(der).digest('hex') };
    }),
  );
  const privateKeys = await Promise.all(
    privateFiles.map(async (file) => createPrivateKey(await readFile(file))),
  );
  return { publicKeys, privateKeys };
}

/**
 * The options wrapped once per recipient (RSA-OAEP, A256GCM, as ocicrypt's jwe key wrapper), each JWE in JSON
 * serialization, base64, comma-separated: the value of org.opencontainers.image.enc.keys.jwe.
 */
export async function wrapOptions(keys: RecipientKeys, options: Buffer): Promise<string> {
  const wrapped: string[] = [];
  for (const { key } of keys.publicKeys) {
    const jwe = await new FlattenedEncrypt(options)
      .setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A256GCM' })
      .encrypt(key);
    wrapped.push(Buffer.from(JSON.stringify(jwe)).toString('base64'));
  }
  return wrapped.join(',');
}

/** The options, unwrapped with the first private key that opens one of the JWEs. */
export async function unwrapOptions(keys: RecipientKeys, annotation: string): Promise<Buffer> {
  for (const part of annotation.split(',')) {
    let jwe: Record<string, unknown>;
    try {
      jwe = JSON.parse(Buffer.from(part, 'base64').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new RegistryDecryptionFailedError('a wrapped key is not a JWE in JSON serialization');
    }
    for (const key of keys.privateKeys) {
      try {
        const opened = Array.isArray(jwe.recipients)
          ? await generalDecrypt(jwe as never, key)
          : await flattenedDecrypt(jwe as never, key);
        return Buffer.from(opened.plaintext);
      } catch {
        // Another recipient's JWE, or another key: the next pair may open it.
      }
    }
  }
  throw new RegistryDecryptionFailedError('none of the configured decryption keys opens its wrapped key');
}
