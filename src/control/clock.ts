// The controls' clock: the machine's, or for tests a time read from DEPLOYER_CLOCK_FILE on
// every call (RFC 3339), so a test moves time forward without sleeping. Refused on Cloud Run
// (src/config/production.ts).
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.ts';

export function controlClock(env: NodeJS.ProcessEnv = process.env): () => number {
  const file = env.DEPLOYER_CLOCK_FILE;
  if (!file) return Date.now;
  return () => {
    const at = Date.parse(readFileSync(file, 'utf8').trim());
    if (Number.isNaN(at)) throw new ConfigError('DEPLOYER_CLOCK_FILE', [`DEPLOYER_CLOCK_FILE: ${file} holds no RFC 3339 time`]);
    return at;
  };
}
