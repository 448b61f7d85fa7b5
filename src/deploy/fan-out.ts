// A target on several clusters: the same intent deployed to each, in parallel (at most
// rollout.maxParallel at once) or in order (stopping at the first failure), each cluster
// with the request's own deadline. One cluster's error is that cluster's result, never an
// exception that would lose the others'.
import type { Target } from '../config/load.ts';
import { asDeployError } from '../errors.ts';
import { inPool } from '../pool.ts';
import { SUCCEEDED, worstStatus } from '../report/outcome.ts';
import type { ClusterDeployer } from './cluster-deploy.ts';
import type { DeployContext, DeployIntent } from '../core/intent.ts';
import type { ClusterResult, DeployResult, FanOutResult } from '../core/result.ts';

export async function fanOut(deploy: ClusterDeployer, target: Target, intent: DeployIntent, ctx: DeployContext): Promise<FanOutResult> {
  const started = Date.now();
  const reconcile = intent.image === undefined;

  const one = async (cluster: string): Promise<ClusterResult> => {
    const since = Date.now();
    const { progress } = ctx;
    try {
      const result = await deploy({ ...target, cluster }, intent, { ...ctx, ...(progress && { progress: (m: string) => progress(`${cluster}: ${m}`) }) });
      return ofCluster(result, reconcile);
    } catch (err) {
      const e = asDeployError(err);
      return { cluster, status: 'failed', reason: e.message, error: { code: e.code, message: e.message, retryable: e.retryable }, objects: [], elapsedMs: Date.now() - since };
    }
  };

  let results: ClusterResult[];
  if (target.strategy === 'sequential') {
    // The first cluster is the canary: after a failure the later ones are not touched.
    results = [];
    let failed: string | undefined;
    for (const cluster of target.clusters) {
      if (failed !== undefined) {
        results.push({ cluster, status: 'skipped', reason: `not deployed: cluster ${failed} failed first (strategy: sequential)`, objects: [], elapsedMs: 0 });
        continue;
      }
      const r = await one(cluster);
      results.push(r);
      if (r.status === 'skipped' || !SUCCEEDED.has(r.status)) failed = cluster;
    }
  } else {
    results = await inPool(target.clusters, target.rollout.maxParallel, one);
  }

  const images = new Set(results.flatMap((r) => (r.image === undefined ? [] : [r.image])));
  const image = intent.image ?? (images.size === 1 ? [...images][0] : undefined);
  return {
    status: worstStatus(results.map((r) => r.status)),
    target: target.name,
    namespace: target.namespace,
    ...(image !== undefined && { image }),
    requestId: intent.requestId,
    dryRun: intent.dryRun,
    ...(reconcile && { reconciled: true }),
    strategy: target.strategy,
    clusters: results,
    elapsedMs: Date.now() - started,
  };
}

/** A cluster's DeployResult without what the whole answer states once. */
function ofCluster(r: DeployResult, reconcile: boolean): ClusterResult {
  const { status, target: _t, namespace: _n, image, requestId: _r, dryRun: _d, reconciled: _c, ...rest } = r;
  return { ...rest, status, ...(reconcile && { image }) };
}
