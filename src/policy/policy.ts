// Decides whether an intent may run, before anything talks to a cluster: the target
// exists, the image is allowed for it, and its manifests stay in its namespace.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Config, Target } from '../config/load.ts';
import type { DeployIntent } from '../core/intent.ts';
import { DeployError } from '../errors.ts';
import { parseImage, type ImageRef } from '../core/image-ref.ts';
import { checkImageAllowed } from './image.ts';

export interface Plan {
  intent: DeployIntent;
  target: Target;
  image: ImageRef;
}

export function resolveTarget(intent: DeployIntent, config: Config): Target {
  const target = config.targets.get(intent.target);
  if (!target) {
    throw new DeployError('UNKNOWN_TARGET', `unknown target "${intent.target}"; configured targets: ${[...config.targets.keys()].join(', ')}`);
  }
  return target;
}

/** `image` is the intent's, or for a reconcile the one the workload recorded: both must be allowed. */
export function authorize(intent: DeployIntent, target: Target, imageRef: string): Plan {
  const image = parseImage(imageRef);
  checkImageAllowed(image, target.images, target.name);
  checkNamespaces(target.objects, target);
  return { intent, target, image };
}

/** The manifests (files, or an OCI release once fetched) stay in the target's namespace. */
export function checkNamespaces(objects: readonly KubernetesObject[], target: Target): void {
  for (const obj of objects) {
    const ns = obj.metadata?.namespace;
    if (ns !== undefined && ns !== target.namespace) {
      throw new DeployError(
        'NAMESPACE_NOT_ALLOWED',
        `${obj.kind ?? '?'} ${obj.metadata?.name ?? '?'} names namespace "${ns}", but target "${target.name}" deploys only to "${target.namespace}"`,
      );
    }
  }
}
