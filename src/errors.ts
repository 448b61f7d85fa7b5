// One error type for every stage: a stable machine code and a message that tells the
// caller what to fix. Whether a retry can help, and which HTTP status a status-answering
// source uses, are decided here, once per code; stages only throw codes.
const ERRORS = {
  BAD_REQUEST: { retryable: false, http: 400 },
  UNSUPPORTED_MEDIA_TYPE: { retryable: false, http: 415 },
  PAYLOAD_TOO_LARGE: { retryable: false, http: 413 },
  UNAUTHENTICATED: { retryable: false, http: 401 },
  NOT_FOUND: { retryable: false, http: 404 },
  INVALID_IMAGE: { retryable: false, http: 400 },
  INVALID_MANIFEST: { retryable: false, http: 400 },
  IMAGE_NOT_ALLOWED: { retryable: false, http: 403 },
  NAMESPACE_NOT_ALLOWED: { retryable: false, http: 403 },
  KIND_NOT_ALLOWED: { retryable: false, http: 403 },
  UNKNOWN_TARGET: { retryable: false, http: 404 },
  DEPLOYMENT_NOT_FOUND: { retryable: false, http: 404 },
  CONTAINER_NOT_FOUND: { retryable: false, http: 400 },
  NOT_DEPLOYED: { retryable: false, http: 404 },
  /** Not (yet) in the registry: CI may not have pushed it, so a redelivery can find it. */
  IMAGE_NOT_FOUND: { retryable: true, http: 404 },
  MANIFESTS_NOT_FOUND: { retryable: true, http: 404 },
  /** The manifests artifact cannot be used as it is (format, size, paths, YAML): pushing it again will not change it. */
  MANIFESTS_INVALID: { retryable: false, http: 400 },
  /** The manifests tag template names a value the event does not give (a digest-only push has no tag). */
  MANIFESTS_TAG_UNKNOWN: { retryable: false, http: 400 },
  /** `pinDigests: true`, and the image's registry is not one the deployer can ask for a digest. */
  IMAGE_NOT_PINNED: { retryable: false, http: 400 },
  REGISTRY_UNAVAILABLE: { retryable: true, http: 503 },
  /** 401/403 or another refusal from the registry: configuration (IAM), not luck. */
  REGISTRY_ERROR: { retryable: false, http: 502 },
  /** Another field manager owns a field: only a person (or `force`) can settle it. */
  CONFLICT: { retryable: false, http: 409 },
  /** A Job that must be replaced is still running: it will finish, so a redelivery can succeed. */
  JOB_RUNNING: { retryable: true, http: 409 },
  /** RBAC denies the deployer: redelivering will not grant it. */
  CLUSTER_FORBIDDEN: { retryable: false, http: 502 },
  CLUSTER_ERROR: { retryable: false, http: 502 },
  CLUSTER_UNAVAILABLE: { retryable: true, http: 503 },
  /** NOT_FOUND, PERMISSION_DENIED, a cluster without endpoint: configuration, not luck. */
  CONTAINER_API_ERROR: { retryable: false, http: 502 },
  CONTAINER_API_UNAVAILABLE: { retryable: true, http: 503 },
  /** The queue topic did not accept the message (or no ID token could sign it): nothing was queued, sending again may succeed. */
  QUEUE_UNAVAILABLE: { retryable: true, http: 503 },
  /** /approve or /reject for a target that holds no such event (never held, already released, replaced or expired). */
  HOLD_NOT_FOUND: { retryable: false, http: 404 },
  /** The target's hold record is not one the deployer wrote (hand-edited): a person must look. */
  HOLD_INVALID: { retryable: false, http: 409 },
  /** A verified caller who may not do this: /approve by someone not among the target's approvers, `override` by someone not in auth.direct.breakGlass. */
  FORBIDDEN: { retryable: false, http: 403 },
  /** A bug: redelivering the same input would hit it again. */
  INTERNAL: { retryable: false, http: 500 },
} as const satisfies Record<string, { retryable: boolean; http: number }>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export class DeployError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeployError';
    this.code = code;
  }

  /** Retrying later may succeed: a source that can ask for redelivery should. */
  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }

  /** The status a source that answers with HTTP statuses uses. */
  get http(): number {
    return ERRORS[this.code].http;
  }
}

export function asDeployError(err: unknown): DeployError {
  if (err instanceof DeployError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DeployError('INTERNAL', `internal error: ${message}`, { cause: err });
}
