// Function target `deploy` (HTTP signature) for @google-cloud/functions-framework.
import * as ff from '@google-cloud/functions-framework';
import { createAppFromEnv } from './app.ts';
import { ConfigError } from './config/load.ts';
import { jsonLogger } from './core/log.ts';
import { closeBeforeExit } from './shutdown.ts';
import { guardEveryServer } from './sources/body-limit.ts';

const log = jsonLogger();
let app;
try {
  app = createAppFromEnv(log);
} catch (err) {
  // Refuse to start, listing every problem, rather than serve with a half-read config.
  if (err instanceof ConfigError) log('ERROR', err.message, { problems: err.problems });
  throw err;
}
log('INFO', `gke-deployer ready: ${app.config.targets.size} targets, ${app.config.clusters.size} clusters`, { config: app.config.file });
// Bounds every body before functions-framework's own parser would buffer it (up to 1 GiB).
guardEveryServer(log);
ff.http('deploy', app.handler);
closeBeforeExit(() => app.close());
