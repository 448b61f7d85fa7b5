// Which source answers which path. Adding a trigger is one line here plus its adapter.
import type { Config } from '../config/load.ts';
import type { OidcVerifier } from './auth/oidc.ts';
import { directSource } from './direct.ts';
import { pubsubSource } from './pubsub.ts';
import { schedulerSource } from './scheduler.ts';
import type { Source } from './source.ts';

export function sourceRoutes(config: Config, verifier: OidcVerifier): Map<string, Source> {
  const routes = new Map<string, Source>();
  routes.set('/deploy', directSource(config.auth.direct, verifier));
  if (config.auth.pubsub) routes.set('/pubsub', pubsubSource(config.auth.pubsub, config.rules, verifier));
  if (config.auth.scheduler) routes.set('/scheduler', schedulerSource(config.auth.scheduler, verifier));
  return routes;
}
