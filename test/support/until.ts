// Waiting for something the test cannot be told about: polled, with a deadline that fails
// naming what was awaited and what was last seen, so a regression fails instead of hanging.
import { setTimeout as sleep } from 'node:timers/promises';

export async function until<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  opts: { timeoutMs?: number; everyMs?: number; seen?: () => unknown } = {},
): Promise<T> {
  const { timeoutMs = 30_000, everyMs = 50, seen } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen ? `; last seen: ${JSON.stringify(seen())}` : ''}`);
    await sleep(everyMs);
  }
}
