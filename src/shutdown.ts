// functions-framework exits at once on SIGTERM. Cloud Run gives an instance 10 s after
// SIGTERM; the app uses a little of it to hand back the Leases it holds (src/apply/lock.ts),
// so another instance need not wait for them to expire. The framework's own handler runs
// right after.
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export function closeBeforeExit(close: () => Promise<void>): void {
  let closing: Promise<void> | undefined;
  const deferred = new Map<string, ((signal: string) => void)[]>();
  const ours = (signal: string): void => {
    closing ??= close().catch(() => undefined);
    void closing.then(() => {
      for (const listener of deferred.get(signal) ?? []) listener(signal);
    });
  };
  // The framework registers its handlers once the server listens, after this module ran:
  // each is set aside as it is added, to run after close().
  process.on('newListener', (event: string | symbol, listener: (...args: unknown[]) => void) => {
    if (typeof event !== 'string' || !(SIGNALS as readonly string[]).includes(event) || listener === ours) return;
    deferred.set(event, [...(deferred.get(event) ?? []), listener]);
    setImmediate(() => process.removeListener(event, listener));
  });
  for (const signal of SIGNALS) process.on(signal, ours);
}
