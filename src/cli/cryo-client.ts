import { Readable } from 'node:stream';
import { ErrorBodySchema } from '../domain/error-body.js';
import { streamRequest } from '../adapters/peer/stream-request.js';

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

/** The cryo REST API, for the command line: JSON in and out, archives streamed both ways. */
export class CryoClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async json<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, {
      ...(body !== undefined
        ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
        : {}),
    });
    const text = await res.text();
    return (text ? JSON.parse(text) : null) as T;
  }

  /** The response body of a GET, as a stream (an exported archive). */
  async download(path: string): Promise<Readable> {
    const res = await this.send('GET', path, {});
    if (!res.body) throw new CliError('EMPTY_RESPONSE', `GET ${path} answered without a body`);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  }

  /** POSTs `input` as the request body, streamed (an archive to import). */
  async upload<T = unknown>(path: string, input: Readable, contentType: string): Promise<T> {
    let answer: { status: number; text: string };
    try {
      // Not fetch: cryo refuses a bad archive as soon as it sees why, before it has read the rest, and fetch
      // would then report only the broken pipe, not cryo's answer.
      answer = await streamRequest(
        'POST',
        `${this.url}${path}`,
        { authorization: `Bearer ${this.token}`, 'content-type': contentType },
        input,
      );
    } catch (err) {
      throw this.unreachable((err as { code?: string }).code ?? (err as Error).message);
    }
    if (answer.status < 200 || answer.status > 299)
      throw answerError('POST', path, answer.status, answer.text);
    return JSON.parse(answer.text) as T;
  }

  private async send(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string> },
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        ...init,
        method,
        headers: { authorization: `Bearer ${this.token}`, ...init.headers },
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
      throw this.unreachable(cause?.code ?? cause?.errors?.[0]?.code ?? (err as Error).message);
    }
    if (res.ok) return res;
    throw answerError(method, path, res.status, await res.text());
  }

  private unreachable(why: string): CliError {
    return new CliError(
      'CRYO_UNREACHABLE',
      `cannot reach cryo at ${this.url}: ${why}`,
      'start it (cryo serve), or give its address with --url or CRYO_URL',
    );
  }
}

/** The API's error body as a CliError, or the status and the start of whatever else came. */
function answerError(method: string, path: string, status: number, text: string): CliError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const err = ErrorBodySchema.safeParse(parsed);
  if (err.success) return new CliError(err.data.code, err.data.message, err.data.hint, err.data.details);
  return new CliError(`HTTP_${status}`, `${method} ${path} answered ${status}: ${text.slice(0, 200)}`);
}
