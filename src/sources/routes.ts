// Which source answers which path. Adding a trigger is one line here plus its adapter.
import type { Config } from '../config/load.ts';
import type { OidcVerifier } from './auth/oidc.ts';
import { decisionSource } from './approve.ts';
import { directSource } from './direct.ts';
import { githubSource } from './github.ts';
import { gitlabSource } from './gitlab.ts';
import { pubsubSource } from './pubsub.ts';
import { schedulerSource } from './scheduler.ts';
import type { RouterQueue } from './router.ts';
import type { Source } from './source.ts';

export function sourceRoutes(config: Config, verifier: OidcVerifier, queue?: RouterQueue): Map<string, Source> {
  const routes = new Map<string, Source>();
  routes.set('/deploy', directSource(config.auth.direct, verifier));
  if (config.auth.pubsub) {
    const queued = queue && config.queue ? { queue: { subscription: config.queue.subscription, identity: () => queue.identity() } } : {};
    routes.set('/pubsub', pubsubSource(config.auth.pubsub, { rules: config.rules, targets: config.targets, ...queued }, verifier));
  }
  if (config.auth.scheduler) routes.set('/scheduler', schedulerSource(config.auth.scheduler, verifier));
  if (config.auth.approve) {
    routes.set('/approve', decisionSource('approve', config.auth.approve, verifier));
    routes.set('/reject', decisionSource('reject', config.auth.approve, verifier));
  }
  if (config.auth.github) routes.set('/webhooks/github', githubSource(config.auth.github, config.rules));
  if (config.auth.gitlab) routes.set('/webhooks/gitlab', gitlabSource(config.auth.gitlab, config.rules));
  return routes;
}
