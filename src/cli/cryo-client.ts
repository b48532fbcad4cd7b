import { Readable } from 'node:stream';
import { ErrorBodySchema } from '../domain/error-body.js';

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
    const res = await this.send('POST', path, {
      body: Readable.toWeb(input) as ReadableStream,
      headers: { 'content-type': contentType },
      duplex: 'half',
    });
    return (await res.json()) as T;
  }

  private async send(
    method: string,
    path: string,
    init: { body?: RequestInit['body']; headers?: Record<string, string>; duplex?: 'half' },
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        ...init,
        method,
        headers: { authorization: `Bearer ${this.token}`, ...init.headers },
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
      const why = cause?.code ?? cause?.errors?.[0]?.code ?? (err as Error).message;
      throw new CliError(
        'CRYO_UNREACHABLE',
        `cannot reach cryo at ${this.url}: ${why}`,
        'start it (cryo serve), or give its address with --url or CRYO_URL',
      );
    }
    if (res.ok) return res;
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const err = ErrorBodySchema.safeParse(parsed);
    if (err.success) throw new CliError(err.data.code, err.data.message, err.data.hint, err.data.details);
    throw new CliError(
      `HTTP_${res.status}`,
      `${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`,
    );
  }
}
