import { AppError } from './app-error.js';
import { ErrorCode } from './error-code.js';

export class ValidationError extends AppError {
  constructor(message: string, hint?: string, details?: unknown) {
    super(ErrorCode.VALIDATION_FAILED, 400, message, hint, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'a valid bearer token is required') {
    super(
      ErrorCode.UNAUTHORIZED,
      401,
      message,
      'send "Authorization: Bearer <token>"; the token is CRYO_TOKEN or <data dir>/token',
    );
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(received: string, accepted: readonly string[]) {
    super(
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      415,
      `this route does not take ${received === '' ? 'a body without a content-type' : `content-type ${received}`}`,
      `send the body as a stream with content-type ${accepted.join(' or ')}`,
      { accepted },
    );
  }
}

export class RouteNotFoundError extends AppError {
  constructor(method: string, url: string) {
    super(
      ErrorCode.ROUTE_NOT_FOUND,
      404,
      `no route ${method} ${url}`,
      'the API is described at /openapi.json and /docs',
    );
  }
}
