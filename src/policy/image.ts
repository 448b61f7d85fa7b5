// Which image repositories a target may deploy.
import { DeployError } from '../errors.ts';
import type { ImageRef } from '../core/image-ref.ts';

/** Exact repository match against the target's allow-list. */
export function checkImageAllowed(image: ImageRef, allowed: readonly string[], target: string): void {
  if (!allowed.includes(image.repository)) {
    throw new DeployError(
      'IMAGE_NOT_ALLOWED',
      `image repository "${image.repository}" is not allowed for target "${target}"; allowed: ${allowed.join(', ')}`,
    );
  }
}
