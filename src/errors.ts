// One error type for every stage: a stable machine code, the HTTP status a source
// should answer with, and a message that tells the caller what to fix.
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAUTHENTICATED'
  | 'NOT_FOUND'
  | 'INVALID_IMAGE'
  | 'INVALID_MANIFEST'
  | 'IMAGE_NOT_ALLOWED'
  | 'NAMESPACE_NOT_ALLOWED'
  | 'KIND_NOT_ALLOWED'
  | 'UNKNOWN_TARGET'
  | 'DEPLOYMENT_NOT_FOUND'
  | 'CONTAINER_NOT_FOUND'
  | 'NOT_DEPLOYED'
  | 'CONFLICT'
  | 'CLUSTER_FORBIDDEN'
  | 'CLUSTER_ERROR'
  | 'CLUSTER_UNAVAILABLE'
  | 'CONTAINER_API_ERROR'
  | 'CONTAINER_API_UNAVAILABLE'
  | 'INTERNAL';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  INVALID_IMAGE: 400,
  INVALID_MANIFEST: 400,
  IMAGE_NOT_ALLOWED: 403,
  NAMESPACE_NOT_ALLOWED: 403,
  KIND_NOT_ALLOWED: 403,
  UNKNOWN_TARGET: 404,
  DEPLOYMENT_NOT_FOUND: 404,
  CONTAINER_NOT_FOUND: 400,
  NOT_DEPLOYED: 404,
  CONFLICT: 409,
  CLUSTER_FORBIDDEN: 502,
  CLUSTER_ERROR: 502,
  CLUSTER_UNAVAILABLE: 503,
  CONTAINER_API_ERROR: 502,
  CONTAINER_API_UNAVAILABLE: 503,
  INTERNAL: 500,
};

export class DeployError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeployError';
    this.code = code;
    this.status = STATUS[code];
  }

  /** Retrying later may succeed (the source should ask for redelivery). */
  get transient(): boolean {
    return this.status === 503 || this.status === 502 || this.status === 500;
  }
}

export function asDeployError(err: unknown): DeployError {
  if (err instanceof DeployError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DeployError('INTERNAL', `internal error: ${message}`, { cause: err });
}
