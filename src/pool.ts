// Bounded concurrency, without a dependency: a deploy's requests to one API server, and a
// fan-out over a target's clusters.

/**
 * `fn` over every item, at most `limit` at once; results in item order. After a failure
 * no new item starts, those in flight finish, and the failure of the earliest item is thrown.
 */
export async function inPool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const settled = await run(items, limit, fn, true);
  const failed = settled.find((r) => r?.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<R>).value);
}

/** Like Promise.allSettled, at most `limit` at once. */
export function inPoolSettled<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  return run(items, limit, fn, false) as Promise<PromiseSettledResult<R>[]>;
}

async function run<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>, stopOnFailure: boolean): Promise<(PromiseSettledResult<R> | undefined)[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const results = new Array<PromiseSettledResult<R> | undefined>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !(stopOnFailure && failed)) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!, i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
