// source → DeployIntent → policy → controls (held? src/control/) → the target's clusters, each through cluster-deploy.ts
// (cluster access → [preDeploy Jobs] → apply → rollout: wait, roll back on failure) →
// DeployResult (or, for a target on several clusters, a FanOutResult), which the report
// stage logs.
import { authorize, resolveTarget } from '../policy/policy.ts';
import { clusterDeployer, type Deps } from './cluster-deploy.ts';
import { fanOut } from './fan-out.ts';
import { isManifestsRelease } from '../release/release.ts';
import type { Deployer } from '../core/intent.ts';
import type { Controls } from '../control/controls.ts';

export function deployer(deps: Deps & { controls?: Controls | undefined }): Deployer {
  const toCluster = clusterDeployer(deps);
  return async (intent, ctx = {}) => {
    const target = resolveTarget(intent, deps.config);
    // What is refused is refused before anything is held.
    if (intent.image !== undefined && !isManifestsRelease(intent, target)) authorize(intent, target, intent.image);
    const held = await deps.controls?.hold(intent, target);
    if (held) return held;
    // One cluster: its result and its errors are the answer, as they always were.
    // A reconcile's image is each cluster's own, so each cluster checks it (cluster-deploy.ts authorizes too).
    const result = target.multiCluster ? await fanOut(toCluster, target, intent, ctx) : await toCluster(target, intent, ctx);
    // Break-glass is said in the answer and the result message, not only in the log.
    return intent.override && target.windows ? { ...result, override: intent.override } : result;
  };
}
