import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

/** Podman's API answered with an error that is not CRIU's. */
export class PodmanError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.PODMAN_FAILED,
      500,
      `podman: ${message}`,
      "see podman system service's log (journalctl -u podman, or its stderr)",
      undefined,
      options,
    );
  }
}

/** Podman's service does not answer on its socket. */
export class PodmanUnavailableError extends AppError {
  constructor(socket: string, message: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.PODMAN_UNAVAILABLE,
      503,
      `podman does not answer on ${socket}: ${message}`,
      'start it (systemctl start podman.socket, or podman system service --time=0 unix://SOCKET) or set CRYO_PODMAN_SOCKET',
      undefined,
      options,
    );
  }
}

/** What cryo does on Docker but not yet on Podman; refused before anything is frozen or written. */
export class EngineUnsupportedError extends AppError {
  constructor(what: string, hint: string) {
    super(ErrorCode.ENGINE_UNSUPPORTED, 409, `${what} is not done on Podman yet`, hint, { engine: 'podman' });
  }
}
