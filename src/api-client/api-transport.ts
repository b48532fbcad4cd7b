import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { ApiError, answerError, unreachableReason } from './api-error.js';
import { openRequest, readText } from './http-request.js';
import { streamRequest } from './stream-request.js';

export interface ApiRequest {
  /** A JSON body. */
  json?: unknown;
  /** A streamed body (an archive): sent with node:http, which reads an answer given before the body is read. */
  stream?: NodeJS.ReadableStream;
  contentType?: string;
  /** 0: no timeout. */
  timeoutMs?: number;
  /** For a streamed body: fails once neither the body nor the answer has moved for this long (0: never). */
  idleTimeoutMs?: number;
}

/** One cryo API at `url` with its bearer token: every request and upload of the CLI and the peer agent. */
export class ApiTransport {
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly timeoutMs = 0,
  ) {}

  /** The answer's JSON (null when empty); anything but 2xx throws an ApiError. */
  async call<T = unknown>(method: string, path: string, request: ApiRequest = {}): Promise<T> {
    const text = await this.text(method, path, request);
    return (text ? JSON.parse(text) : null) as T;
  }

  /** The response body of a GET, as a stream (an exported archive). */
  async download(path: string): Promise<Readable> {
    return this.open('GET', path, {});
  }

  private async text(method: string, path: string, request: ApiRequest): Promise<string> {
    if (request.stream === undefined) {
      const res = await this.open(method, path, request);
      try {
        return await readText(res);
      } catch (err) {
        throw this.unreachable(err);
      }
    }
    let answer: { status: number; text: string };
    try {
      answer = await streamRequest(
        method,
        `${this.url}${path}`,
        this.headers(request.contentType),
        Readable.from(request.stream as AsyncIterable<Buffer>),
        this.signal(request),
        request.idleTimeoutMs,
      );
    } catch (err) {
      throw this.unreachable(err);
    }
    if (answer.status < 200 || answer.status > 299)
      throw answerError(method, path, answer.status, answer.text);
    return answer.text;
  }

  private async open(method: string, path: string, request: ApiRequest): Promise<IncomingMessage> {
    const json = request.json !== undefined;
    let res: IncomingMessage;
    try {
      res = await openRequest(
        method,
        `${this.url}${path}`,
        this.headers(json ? 'application/json' : request.contentType),
        json ? JSON.stringify(request.json) : undefined,
        this.signal(request),
      );
    } catch (err) {
      throw this.unreachable(err);
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status <= 299) return res;
    let text: string;
    try {
      text = await readText(res);
    } catch (err) {
      throw this.unreachable(err);
    }
    throw answerError(method, path, status, text);
  }

  private headers(contentType: string | undefined): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...(contentType ? { 'content-type': contentType } : {}) };
  }

  private signal(request: ApiRequest): AbortSignal | undefined {
    const ms = request.timeoutMs ?? this.timeoutMs;
    return ms > 0 ? AbortSignal.timeout(ms) : undefined;
  }

  private unreachable(err: unknown): ApiError {
    const why = unreachableReason(err);
    return new ApiError('unreachable', why, `cannot reach cryo at ${this.url}: ${why}`);
  }
}
