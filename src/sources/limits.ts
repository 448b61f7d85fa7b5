// Every input limit in one place.
export const LIMITS = {
  /** Largest request body any route accepts. */
  maxBodyBytes: 1024 * 1024,
  /** Longest target name, image reference or id we read from a request. */
  maxFieldLength: 512,
} as const;
