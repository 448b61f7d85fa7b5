// What reporting a result may cost a deploy: every limit of src/report in one place.
export const REPORT_LIMITS = {
  /**
   * Each publish or status call, and a deploy's final calls all together: the most they add
   * to its answer. They run alongside each other; what is not done by then is logged and dropped.
   */
  callTimeoutMs: 5_000,
  /** GitHub refuses a deployment status description longer than this (docs: "maximum 140 characters"). */
  githubDescriptionLength: 140,
  /** GitLab's commit status description column. */
  gitlabDescriptionLength: 255,
  /** Pub/Sub's limit on an attribute value (quotas: 1024 bytes). */
  attributeValueBytes: 1024,
  /** A chat message's text: Slack advises at most 4,000 characters (it cuts at 40,000); Google Chat takes 32,000 bytes. */
  chatTextLength: 4_000,
  /** How much of an API's error answer a log line quotes. */
  errorExcerptLength: 300,
} as const;
