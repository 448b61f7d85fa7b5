// Image references, after the grammar of distribution/reference:
//   repository[:tag][@algorithm:digest]
// The ground floor: the policy, release and source stages all read them.
import { DeployError } from '../errors.ts';

export interface ImageRef {
  repository: string;
  tag?: string;
  digest?: string;
  /** The reference as it will be written into pod specs. */
  ref: string;
}

const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const domain = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?';
const REFERENCE = new RegExp(
  `^((?:${domain}/)?${component}(?:/${component})*)(?::([\\w][\\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`,
);

export function parseImage(image: string): ImageRef {
  const m = image.length <= 512 ? REFERENCE.exec(image) : null;
  if (!m?.[1]) {
    throw new DeployError('INVALID_IMAGE', `"${image.slice(0, 200)}" is not a valid image reference (want repository:tag, repository@sha256:<64 hex> or both)`);
  }
  const [, repository, tag, digest] = m;
  if (tag === undefined && digest === undefined) {
    throw new DeployError('INVALID_IMAGE', `image "${image}" needs a tag or a digest: deploying an implicit :latest is not reproducible`);
  }
  return { repository, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }), ref: image };
}
