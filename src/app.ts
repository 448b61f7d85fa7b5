// Wires configuration, cluster access, the deploy pipeline and the HTTP sources.
import { loadConfigFile, type Config } from './config/load.ts';
import { ClusterRegistry } from './cluster/registry.ts';
import { deployer } from './deploy/pipeline.ts';
import { jsonLogger, registerSecret, type Logger } from './report/log.ts';
import { router, type Handler } from './sources/router.ts';

export interface App {
  config: Config;
  handler: Handler;
  close(): Promise<void>;
}

export function createApp(config: Config, log: Logger = jsonLogger()): App {
  // Webhook secrets are blanked out of every log line, wherever a bug might put them.
  for (const name of [config.auth.github?.secretEnv, config.auth.gitlab?.tokenEnv]) {
    if (name) registerSecret(process.env[name]?.replace(/[\r\n]+$/, ''));
  }
  const clusters = new ClusterRegistry(config.clusters);
  const handler = router({ config, deploy: deployer({ config, clusters }), log });
  return { config, handler, close: () => clusters.close() };
}

export function configPath(env = process.env): string {
  return env.DEPLOYER_CONFIG ?? './deployer.yaml';
}

export function createAppFromEnv(log: Logger = jsonLogger()): App {
  return createApp(loadConfigFile(configPath()), log);
}
