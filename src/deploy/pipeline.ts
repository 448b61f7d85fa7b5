// source → DeployIntent → policy → the target's clusters, each through cluster-deploy.ts
// (cluster access → [preDeploy Jobs] → apply → rollout: wait, roll back on failure) →
// DeployResult (or, for a target on several clusters, a FanOutResult), which the report
// stage logs.
import { authorize, resolveTarget } from '../policy/policy.ts';
import { clusterDeployer, type Deps } from './cluster-deploy.ts';
import { fanOut } from './fan-out.ts';
import { isManifestsRelease } from '../release/release.ts';
import type { Deployer } from '../core/intent.ts';

export function deployer(deps: Deps): Deployer {
  const toCluster = clusterDeployer(deps);
  return async (intent, ctx = {}) => {
    const target = resolveTarget(intent, deps.config);
    // One cluster: its result and its errors are the answer, as they always were.
    if (!target.multiCluster) return toCluster(target, intent, ctx);
    // Refused once for the whole target rather than once per cluster. A reconcile's image
    // is each cluster's own, so each cluster checks it (cluster-deploy.ts authorizes too).
    if (intent.image !== undefined && !isManifestsRelease(intent, target)) authorize(intent, target, intent.image);
    return fanOut(toCluster, target, intent, ctx);
  };
}
