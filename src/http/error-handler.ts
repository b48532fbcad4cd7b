import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { ErrorBody } from '../domain/error-body.js';
import { AppError, ErrorCode, RouteNotFoundError } from '../domain/errors/index.js';

// Fastify's own client errors, given stable cryo codes.
const FASTIFY_CODES: Record<string, { code: string; hint?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: ErrorCode.PAYLOAD_TOO_LARGE },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: ErrorCode.UNSUPPORTED_MEDIA_TYPE, hint: 'send application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: ErrorCode.VALIDATION_FAILED,
    hint: 'send a JSON object, or no content-type with no body',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: ErrorCode.VALIDATION_FAILED, hint: 'the body must be valid JSON' },
};

/** The one place where errors become HTTP responses `{statusCode, code, message, hint?, details?}`. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    const err = new RouteNotFoundError(request.method, request.url.split('?')[0] ?? request.url);
    void reply.status(err.statusCode).send(toBody(err));
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.statusCode >= 500) request.log.error({ err: error }, error.message);
      return reply.status(error.statusCode).send(toBody(error));
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.map((v) => ({
        in: error.validationContext,
        path: v.instancePath || '/',
        message: v.message,
      }));
      const first = issues[0];
      return reply.status(400).send({
        statusCode: 400,
        code: ErrorCode.VALIDATION_FAILED,
        message: `invalid ${error.validationContext ?? 'request'}: ${first ? `${first.path} ${first.message}` : error.message}`,
        hint: 'see details for every problem; the API is described at /openapi.json',
        details: issues,
      } satisfies ErrorBody);
    }
    const status = error.statusCode ?? 500;
    if (status < 500) {
      const known = FASTIFY_CODES[error.code];
      return reply.status(status).send({
        statusCode: status,
        code: known?.code ?? (status === 400 ? ErrorCode.VALIDATION_FAILED : ErrorCode.BAD_REQUEST),
        message: error.message,
        ...(known?.hint ? { hint: known.hint } : {}),
      } satisfies ErrorBody);
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.status(500).send({
      statusCode: 500,
      code: ErrorCode.INTERNAL_ERROR,
      message: 'cryo hit an unexpected error',
      hint: "see cryo's log for the request id " + request.id,
    } satisfies ErrorBody);
  });
}

export function toBody(err: AppError): ErrorBody {
  return {
    statusCode: err.statusCode,
    code: err.code,
    message: err.message,
    ...(err.hint !== undefined ? { hint: err.hint } : {}),
    ...(err.details !== undefined ? { details: err.details } : {}),
  };
}

// Node's HTTP parser refuses these before Fastify sees a request: they still get cryo's body.
const CLIENT_ERRORS: Record<string, Omit<ErrorBody, 'message'> & { message?: string }> = {
  HPE_HEADER_OVERFLOW: {
    statusCode: 431,
    code: ErrorCode.HEADERS_TOO_LARGE,
    hint: 'the request line and headers must stay under 16 KiB; send long values in a JSON body',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    statusCode: 408,
    code: ErrorCode.REQUEST_TIMEOUT,
    hint: 'send the whole request sooner',
  },
};

/** Answers a request that Node's HTTP parser refused (Fastify's `clientErrorHandler`). */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const known = err.code !== undefined ? CLIENT_ERRORS[err.code] : undefined;
  endWithError(socket, {
    statusCode: known?.statusCode ?? 400,
    code: known?.code ?? ErrorCode.MALFORMED_REQUEST,
    message: `the HTTP request could not be parsed: ${err.code ?? err.message}`,
    hint: known?.hint ?? 'send a well-formed HTTP/1.1 request',
  });
}

/** Answers on the raw socket, outside Fastify (its request may still be half read), and closes it. */
export function endWithError(socket: Socket, error: ErrorBody): void {
  const body = JSON.stringify(error);
  socket.end(
    `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode] ?? ''}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
