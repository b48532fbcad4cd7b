import type { ServerResponse } from 'node:http';

/** Aborts when the connection closes before the response was sent in full: the caller has gone away. */
export function disconnectSignal(response: ServerResponse): AbortSignal {
  const controller = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) controller.abort();
  });
  return controller.signal;
}
