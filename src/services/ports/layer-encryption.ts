import type { Transform } from 'node:stream';

/**
 * How one layer is encrypted: its symmetric key and nonce (kept with the level, so that the next push of the same
 * level makes the same blob and the registry has it already), and what the descriptor carries.
 */
export interface LayerSeal {
  /** The recipients it was sealed for: a seal for other recipients is made anew. */
  recipients: string;
  /** base64: the AES-256 key, the CTR nonce. */
  key: string;
  nonce: string;
  /** The plain layer's digest, which the wrapped options carry for the check after decryption. */
  plainDigest: string;
  /** The encrypted blob's digest and size, and the descriptor annotations (wrapped keys, public options). */
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

/** A layer's decryption: the stream, and the check once every byte went through. */
export interface LayerOpening {
  decrypt: Transform;
  /** Throws when the blob was not what was sealed (its MAC), or the plain bytes not its digest. */
  verify: () => void;
  plainDigest: string;
}

/** Layer encryption as containers/ocicrypt does it, so that standard tools (skopeo) decrypt what cryo pushes. */
export interface LayerEncryption {
  /** The recipients' fingerprint, or undefined when no encryption key is configured. */
  readonly recipients: string | undefined;
  /** A fresh key and nonce for the configured recipients. */
  seal(): Pick<LayerSeal, 'recipients' | 'key' | 'nonce'>;
  /**
   * The encrypting stream of a seal, and (once it has ended) the plain and encrypted digests and the annotations
   * (the options wrapped for the recipients): one pass makes all of a layer's descriptor.
   */
  encrypt(seal: Pick<LayerSeal, 'key' | 'nonce'>): {
    stream: Transform;
    finish: () => Pick<LayerSeal, 'plainDigest' | 'digest' | 'annotations'>;
  };
  /** Opens an encrypted layer by its annotations with the configured private keys; a wrong key throws. */
  open(annotations: Record<string, string> | undefined): Promise<LayerOpening>;
}
