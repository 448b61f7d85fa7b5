// source → DeployIntent → policy → cluster access → apply → report.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Config } from '../config/load.ts';
import type { ClusterRegistry } from '../cluster/registry.ts';
import { applyImage, applyObjects, recordedImage, type AppliedObject } from '../apply/apply.ts';
import { renderManifests, type Stamp } from '../apply/render.ts';
import { DeployError } from '../errors.ts';
import { authorize, resolveTarget } from '../policy/policy.ts';
import type { DeployIntent } from './intent.ts';

export interface DeployResult {
  status: 'applied' | 'dry-run';
  target: string;
  cluster: string;
  namespace: string;
  image: string;
  requestId: string;
  dryRun: boolean;
  /** True when the image was the one the workload recorded (a reconcile). */
  reconciled?: boolean;
  objects: AppliedObject[];
}

export interface Deps {
  config: Config;
  clusters: ClusterRegistry;
}

export type Deployer = (intent: DeployIntent) => Promise<DeployResult>;

export function deployer({ config, clusters }: Deps): Deployer {
  return async (intent) => {
    const target = resolveTarget(intent, config);
    const reconcile = intent.image === undefined;
    // A deploy is judged before any network call; only a reconcile must first ask the
    // cluster which image it is re-applying.
    let imageRef = intent.image;
    if (imageRef === undefined) {
      const client = await clusters.client(target.cluster);
      const objects: KubernetesObject[] = target.deployment
        ? [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: target.deployment } }]
        : target.objects;
      imageRef = await recordedImage(client, objects, target.namespace);
      if (imageRef === undefined) {
        throw new DeployError('NOT_DEPLOYED', `nothing to reconcile: no object of target "${target.name}" records an image deployed by gke-deployer; deploy an image first`);
      }
    }
    const { image } = authorize(intent, target, imageRef);
    const stamp: Stamp = { source: intent.source, image: image.ref, requestId: intent.requestId };
    const container = target.container !== undefined ? { container: target.container } : {};
    const objects = target.deployment ? [] : renderManifests(target.objects, { image: image.ref, stamp, ...container });
    const client = await clusters.client(target.cluster);
    // Reconciling means taking back fields someone changed by hand, so it forces.
    const opts = { namespace: target.namespace, clusterScoped: target.clusterScoped, force: target.force || reconcile, dryRun: intent.dryRun };
    const applied = target.deployment
      ? await applyImage(client, { ...opts, deployment: target.deployment, image: image.ref, stamp, ...container })
      : await applyObjects(client, objects, opts);
    return {
      status: intent.dryRun ? 'dry-run' : 'applied',
      target: target.name,
      cluster: target.cluster,
      namespace: target.namespace,
      image: image.ref,
      requestId: intent.requestId,
      dryRun: intent.dryRun,
      ...(reconcile && { reconciled: true }),
      objects: applied,
    };
  };
}
