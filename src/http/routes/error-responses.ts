import { ErrorBodySchema } from '../../domain/error-body.js';

/** The client errors every route documents: bad input, no token, not found, conflict. */
export const errorResponses = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  404: ErrorBodySchema,
  409: ErrorBodySchema,
};

/** The same, for routes that also report a peer's failure (a stream job's sidecar, a migration target). */
export const peerErrorResponses = { ...errorResponses, 502: ErrorBodySchema };

/** The same, for routes that reach an OCI registry. */
export const registryErrorResponses = {
  ...peerErrorResponses,
  403: ErrorBodySchema,
  413: ErrorBodySchema,
  422: ErrorBodySchema,
  504: ErrorBodySchema,
  507: ErrorBodySchema,
};
