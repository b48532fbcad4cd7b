import type { Readable } from 'node:stream';
import { ApiError } from '../api-client/api-error.js';
import { ApiTransport } from '../api-client/api-transport.js';

/** What the API answered with an error status, or why it could not be reached. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    /** The API's details, such as the tail of CRIU's log. */
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The cryo REST API, for the command line: JSON in and out, archives streamed both ways; errors as CliError. */
export class CryoClient {
  private readonly transport: ApiTransport;

  constructor(
    readonly url: string,
    token: string,
  ) {
    this.transport = new ApiTransport(url, token);
  }

  json<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return this.mapped(() => this.transport.call<T>(method, path, body !== undefined ? { json: body } : {}));
  }

  /** The response body of a GET, as a stream (an exported archive). */
  download(path: string): Promise<Readable> {
    return this.mapped(() => this.transport.download(path));
  }

  /** POSTs `input` as the request body, streamed (an archive to import). */
  upload<T = unknown>(path: string, input: Readable, contentType: string): Promise<T> {
    return this.mapped(() => this.transport.call<T>('POST', path, { stream: input, contentType }));
  }

  private async mapped<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.kind === 'unreachable') {
        throw new CliError(
          'CRYO_UNREACHABLE',
          err.message,
          'start it (cryo serve), or give its address with --url or CRYO_URL',
        );
      }
      throw new CliError(err.code, err.message, err.hint, err.details);
    }
  }
}
