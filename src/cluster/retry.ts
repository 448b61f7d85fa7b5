// Retries of transient faults: exponential backoff with full jitter (a uniform wait
// between 0 and min(cap, base·2^attempt)), at least the server's Retry-After, and never
// past a deadline: once the next attempt could not start in time, the last error stands.
import { setTimeout as sleep } from 'node:timers/promises';

export interface Backoff {
  baseMs: number;
  capMs: number;
}

export interface Verdict {
  retry: boolean;
  /** The server asked for at least this long (Retry-After). */
  afterMs?: number;
}

export interface RetryOptions extends Backoff {
  /** Epoch ms: no attempt starts after it. */
  deadline: number;
  /** Stops waiting and retrying (the last error is thrown). */
  signal?: AbortSignal;
  classify(err: unknown): Verdict;
  random?: () => number;
}

export function backoffMs(attempt: number, { baseMs, capMs }: Backoff, random: () => number = Math.random): number {
  return random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP date. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  if (!/[a-z]/i.test(value)) return undefined; // "-1", "1.5": not a date either
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export async function retrying<T>(attempt: (n: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const verdict = opts.classify(err);
      if (!verdict.retry || opts.signal?.aborted) throw err;
      const wait = Math.max(backoffMs(n, opts, opts.random), verdict.afterMs ?? 0);
      if (Date.now() + wait > opts.deadline) throw err;
      try {
        await sleep(wait, undefined, opts.signal && { signal: opts.signal });
      } catch {
        throw err; // aborted while waiting
      }
    }
  }
}
