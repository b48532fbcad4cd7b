/**
 * Why a call to a cryo API failed, neutral to who called: `unreachable` (no answer: refused, reset, timed out)
 * or `answered` (an error status, with the API's code, message and hint when its body had them).
 */
export class ApiError extends Error {
  constructor(
    readonly kind: 'unreachable' | 'answered',
    /** The API's error code; for `unreachable`, the socket's (ECONNREFUSED, ...). */
    readonly code: string,
    message: string,
    readonly status?: number,
    readonly hint?: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The API's error body `{code, message, hint?, details?}` of an answer, or an ApiError naming the status. */
export function answerError(method: string, path: string, status: number, text: string): ApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  // A plain check rather than the zod schema: the CLI must not load zod to report an error.
  const body = parsed as { code?: unknown; message?: unknown; hint?: unknown; details?: unknown } | undefined;
  if (body && typeof body.code === 'string' && typeof body.message === 'string') {
    const hint = typeof body.hint === 'string' ? body.hint : undefined;
    return new ApiError('answered', body.code, body.message, status, hint, body.details);
  }
  return new ApiError(
    'answered',
    `HTTP_${status}`,
    `${method} ${path} answered ${status}: ${text.slice(0, 200)}`,
    status,
  );
}

/** The socket-level reason of a failed fetch or node:http request. */
export function unreachableReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
  return (
    cause?.code ??
    cause?.errors?.[0]?.code ??
    cause?.message ??
    (err as { code?: string }).code ??
    (err as Error).message
  );
}
