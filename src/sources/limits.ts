// Every input limit in one place.
export const LIMITS = {
  /** Largest request body any route accepts. */
  maxBodyBytes: 1024 * 1024,
  /** After refusing a body over the limit: how much more of it is read, and dropped, at most. */
  refusedBodyDrainBytes: 1024 * 1024,
  /**
   * …and how long the connection stays open at most (not read past the bytes above) before it is
   * closed, so a client still sending reads our answer rather than a reset.
   */
  refusedBodyLingerMs: 2_000,
  /** Longest target name, image reference or id we read from a request. */
  maxFieldLength: 512,
  /** Longest webhook event-type header (X-GitHub-Event, X-Gitlab-Event) we accept. */
  maxEventNameLength: 64,
  /** Pub/Sub's own limits on a message's attributes (quotas: 100 attributes, keys 256 bytes, values 1024 bytes). */
  pubsubMaxAttributes: 100,
  pubsubMaxAttributeKeyLength: 256,
  pubsubMaxAttributeValueLength: 1024,
  /**
   * How far ahead of this function's clock a caller's /deploy eventTime may be (clock skew):
   * later is refused (400). Whatever is accepted is recorded no later than the request's arrival.
   */
  maxEventTimeAheadMs: 60_000,
} as const;
