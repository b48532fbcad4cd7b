import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

/** What a checkpoint cannot take to another engine yet; refused before anything is written or sent. */
export class CrossEngineUnsupportedError extends AppError {
  constructor(what: string, hint: string, to = 'Podman') {
    super(ErrorCode.CROSS_ENGINE_UNSUPPORTED, 409, `${what} does not cross to ${to} yet`, hint);
  }
}
