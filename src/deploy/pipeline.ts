// source → DeployIntent → policy → cluster access → apply → report.
import type { Config } from '../config/load.ts';
import type { ClusterRegistry } from '../cluster/registry.ts';
import { applyImage, applyObjects, type AppliedObject } from '../apply/apply.ts';
import { renderManifests, type Stamp } from '../apply/render.ts';
import { authorize } from '../policy/policy.ts';
import type { DeployIntent } from './intent.ts';

export interface DeployResult {
  status: 'applied' | 'dry-run';
  target: string;
  cluster: string;
  namespace: string;
  image: string;
  requestId: string;
  dryRun: boolean;
  objects: AppliedObject[];
}

export interface Deps {
  config: Config;
  clusters: ClusterRegistry;
}

export type Deployer = (intent: DeployIntent) => Promise<DeployResult>;

export function deployer({ config, clusters }: Deps): Deployer {
  return async (intent) => {
    const { target, image } = authorize(intent, config);
    const stamp: Stamp = { source: intent.source, image: image.ref, requestId: intent.requestId };
    // Rendering needs no cluster: a bad manifest fails before any network call.
    const objects = target.deployment ? [] : renderManifests(target.objects, { image: image.ref, stamp, ...(target.container !== undefined && { container: target.container }) });
    const client = await clusters.client(target.cluster);
    const opts = { namespace: target.namespace, clusterScoped: target.clusterScoped, force: target.force, dryRun: intent.dryRun };
    const applied = target.deployment
      ? await applyImage(client, { ...opts, deployment: target.deployment, image: image.ref, stamp, ...(target.container !== undefined && { container: target.container }) })
      : await applyObjects(client, objects, opts);
    return {
      status: intent.dryRun ? 'dry-run' : 'applied',
      target: target.name,
      cluster: target.cluster,
      namespace: target.namespace,
      image: image.ref,
      requestId: intent.requestId,
      dryRun: intent.dryRun,
      objects: applied,
    };
  };
}
