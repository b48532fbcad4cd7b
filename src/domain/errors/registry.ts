import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

/** The registry refused the credentials, or asked for some and cryo has none for it. */
export class RegistryUnauthorizedError extends AppError {
  constructor(registry: string, detail: string) {
    super(
      ErrorCode.REGISTRY_UNAUTHORIZED,
      403,
      `the registry ${registry} refused access: ${detail}`,
      `log in to ${registry} (docker login writes its auths into the file CRYO_REGISTRY_AUTH_FILE names, ~/.docker/config.json by default)`,
    );
  }
}

/** The registry cannot be reached, or keeps failing (5xx) after the retries. */
export class RegistryUnreachableError extends AppError {
  constructor(registry: string, detail: string) {
    super(
      ErrorCode.REGISTRY_UNREACHABLE,
      502,
      `cannot reach the registry ${registry}: ${detail}`,
      'check the registry address, that it runs, and TLS (CRYO_REGISTRY_CA_FILE for a CA of your own; CRYO_REGISTRY_INSECURE for plain HTTP)',
    );
  }
}

/** The registry answered a request with an error of its own (4xx other than auth). */
export class RegistryRefusedError extends AppError {
  constructor(registry: string, what: string, status: number, detail: string) {
    super(
      ErrorCode.REGISTRY_REFUSED,
      502,
      `the registry ${registry} refused ${what}: ${status} ${detail}`,
      "see the registry's log",
    );
  }
}

/** No such manifest (tag or digest) in the registry. */
export class RegistryNotFoundError extends AppError {
  constructor(reference: string) {
    super(
      ErrorCode.REGISTRY_NOT_FOUND,
      404,
      `the registry has no ${reference}`,
      'check the repository and the tag (skopeo inspect docker://REF lists what is there)',
    );
  }
}

/** What a registry served is not a checkpoint cryo can take: refused before anything is written. */
export class RegistryArtifactInvalidError extends AppError {
  constructor(reference: string, detail: string) {
    super(
      ErrorCode.REGISTRY_ARTIFACT_INVALID,
      422,
      `${reference} is not a checkpoint cryo can pull: ${detail}`,
      'pull only what cryo push wrote, unmodified',
    );
  }
}

/** An encrypted layer that the keys here cannot open, or that is not what was encrypted. */
export class RegistryDecryptionFailedError extends AppError {
  constructor(
    readonly detail: string,
    reference?: string,
  ) {
    super(
      ErrorCode.REGISTRY_DECRYPTION_FAILED,
      422,
      `${reference ? `${reference}: ` : ''}an encrypted layer cannot be decrypted: ${detail}`,
      'set CRYO_REGISTRY_DECRYPTION_KEY to the private key whose public key the checkpoint was pushed for (CRYO_REGISTRY_ENCRYPTION_KEY on the pushing host)',
    );
  }
}
