// Malformed and hostile requests for every route, each with the answer README documents for
// it. test/hostile.test.ts sends them to the sandbox-backed function and checks the answer,
// that nothing was applied, and that the process still answers its health route.
//
// The function's config (built in the test): OIDC on /deploy, /pubsub (with a subscriptions
// allow-list) and /scheduler; HMAC on GitHub, token on GitLab. Targets, all in one namespace:
//   web          web.yaml, images [REPO], accept: [intent]
//   locked       web.yaml, images [REPO]          (no deploy intents over Pub/Sub)
//   elsewhere    a Deployment in kube-system      (NAMESPACE_NOT_ALLOWED)
//   clusterwide  a ClusterRole and a Job          (KIND_NOT_ALLOWED)
// The GitHub and GitLab rules deploy images outside web's allow-list, so even an authentic
// (or replayed) delivery is refused before anything is applied.
import { createHmac } from 'node:crypto';
import type { Streamed } from './client.ts';
import { fixture } from '../support/config.ts';

export const REPO = 'europe-docker.pkg.dev/sandbox-project/apps/web';
export const GHCR = 'ghcr.io/codertocat/hello-world';
export const GITLAB_IMAGE = 'registry.example.com/mike/diaspora';
export const GITHUB_SECRET = 'hostile-github-secret';
export const GITLAB_TOKEN = 'hostile-gitlab-token';
export const SUBSCRIPTION = 'projects/sandbox-project/subscriptions/gke-deployer-hostile';
export const DELIVERY = '0b989ba4-242f-11e5-81e1-c7b6966d2516';
export const AUDIENCES = {
  direct: 'https://gke-deployer-hostile.run.app/deploy',
  pubsub: 'https://gke-deployer-hostile.run.app/pubsub',
  scheduler: 'https://gke-deployer-hostile.run.app/scheduler',
} as const;
export const CALLER = 'ci@sandbox-project.iam.gserviceaccount.com';

const MiB = 1024 * 1024;
const DIGEST = 'sha256:325ea4ffaff86cd961a90d6ffe248c0d61cb36f2deae56727d16a7a09c5a918f';

/** How the runner authenticates a row; by default, validly for its route. */
export type Credential =
  | { oidc: 'valid' | 'expired' | 'forged' | 'unverified-email' | 'other-account' | 'alg-none' | 'hs256'; audience?: keyof typeof AUDIENCES }
  /** An Authorization header, as is. */
  | { authorization: string }
  /** X-Hub-Signature-256 as given. */
  | { hub: string }
  | { gitlab: string }
  | 'none';

/** What README documents for the row: an error code, an ignored event, or the health answer. */
export type Expect =
  | { status: number; code: string; acknowledged?: true }
  | { status: number; outcome: 'ignored' | 'ok' };

export interface Row {
  name: string;
  method?: string;
  path: string;
  /** Content-Type (default application/json); null sends none. */
  contentType?: string | null;
  headers?: Record<string, string>;
  body?: string | Buffer;
  stream?: Streamed;
  auth?: Credential;
  expect: Expect;
}

const json = (v: unknown) => JSON.stringify(v);
const deployBody = (image: string, target = 'web') => json({ target, image });
const deepArrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const deepObjects = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const invalidUtf8 = Buffer.concat([Buffer.from('{"target":"web","image":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from(':1"}')]);

/** A Pub/Sub push envelope carrying `data` (JSON-encoded unless bytes) from the allowed subscription. */
function push(data: unknown, over: { attributes?: Record<string, string>; messageId?: string; subscription?: string; rawData?: string } = {}): string {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(json(data));
  return json({
    message: { data: over.rawData ?? bytes.toString('base64'), messageId: over.messageId ?? '7700001', ...(over.attributes && { attributes: over.attributes }) },
    subscription: over.subscription ?? SUBSCRIPTION,
  });
}

export const githubPush = fixture('events/github-push.json');
export const gitlabPush = fixture('events/gitlab-push.json');
export const sign = (body: string | Buffer, secret = GITHUB_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const github = (event = 'push', delivery = DELIVERY) => ({ 'x-github-event': event, 'x-github-delivery': delivery });
const gitlab = (event = 'Push Hook', uuid = '9cebe914-4827-408f-b014-cfa23a47a35f') => ({ 'x-gitlab-event': event, 'x-gitlab-event-uuid': uuid });
const withField = (body: string, key: string, value: unknown) => json({ ...(JSON.parse(body) as object), [key]: value });

const tooLarge = { status: 413, code: 'PAYLOAD_TOO_LARGE' } as const;
const badRequest = { status: 400, code: 'BAD_REQUEST' } as const;
const unauthenticated = { status: 401, code: 'UNAUTHENTICATED' } as const;
const notFound = { status: 404, code: 'NOT_FOUND' } as const;
const acked = (code: string) => ({ status: 200, code, acknowledged: true }) as const;

const deploy: Row[] = [
  { name: 'truncated JSON', path: '/deploy', body: '{"target":"web","ima', expect: badRequest },
  { name: 'JSON with unquoted keys', path: '/deploy', body: "{target: 'web'}", expect: badRequest },
  { name: 'null', path: '/deploy', body: 'null', expect: badRequest },
  { name: 'an array', path: '/deploy', body: '[]', expect: badRequest },
  { name: 'a bare string', path: '/deploy', body: '"web"', expect: badRequest },
  { name: 'an empty body', path: '/deploy', body: '', expect: badRequest },
  { name: 'arrays nested 100 000 deep', path: '/deploy', body: deepArrays(100_000), expect: badRequest },
  { name: 'objects nested 50 000 deep', path: '/deploy', body: deepObjects(50_000), expect: badRequest },
  { name: 'deep nesting under an extra key', path: '/deploy', body: `{"target":"web","image":"${REPO}:1","x":${deepArrays(50_000)}}`, expect: badRequest },
  { name: 'invalid UTF-8 (0xff, an overlong "/")', path: '/deploy', body: invalidUtf8, expect: badRequest },
  { name: 'UTF-16 encoded JSON', path: '/deploy', body: Buffer.from(deployBody(`${REPO}:1`), 'utf16le'), expect: badRequest },
  { name: 'a __proto__ key (prototype pollution)', path: '/deploy', body: `{"target":"web","image":"${REPO}:1","__proto__":{"dryRun":true,"force":true}}`, expect: badRequest },
  { name: 'an unknown field naming a namespace', path: '/deploy', body: json({ target: 'web', image: `${REPO}:1`, namespace: 'kube-system' }), expect: badRequest },
  { name: 'dryRun as a string', path: '/deploy', body: json({ target: 'web', image: `${REPO}:1`, dryRun: 'false' }), expect: badRequest },
  { name: 'a 10 000-character target', path: '/deploy', body: deployBody(`${REPO}:1`, 'w'.repeat(10_000)), expect: badRequest },
  { name: 'text/plain', path: '/deploy', contentType: 'text/plain', body: deployBody(`${REPO}:1`), expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' } },
  { name: 'no Content-Type', path: '/deploy', contentType: null, body: deployBody(`${REPO}:1`), expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' } },
  { name: 'form-encoded', path: '/deploy', contentType: 'application/x-www-form-urlencoded', body: `target=web&image=${REPO}:1`, expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' } },
  { name: 'gzip Content-Encoding', path: '/deploy', headers: { 'content-encoding': 'gzip' }, body: deployBody(`${REPO}:1`), expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' } },
  { name: 'duplicate keys (the last wins: a lookalike image)', path: '/deploy', body: `{"target":"web","image":"${REPO}:1","image":"europe-docker.pkg.dev.evil.com/sandbox-project/apps/web:1"}`, expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  // Images outside the allow-list, or not images at all.
  { name: 'lookalike registry (…pkg.dev.evil.com)', path: '/deploy', body: deployBody('europe-docker.pkg.dev.evil.com/sandbox-project/apps/web:1'), expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'lookalike repository (web-evil)', path: '/deploy', body: deployBody(`${REPO}-evil:1`), expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'a repository under the allowed one', path: '/deploy', body: deployBody(`${REPO}/evil:1`), expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'uppercase registry', path: '/deploy', body: deployBody(`${REPO.toUpperCase().split('/')[0]}/sandbox-project/apps/web:1`), expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'uppercase repository path', path: '/deploy', body: deployBody('europe-docker.pkg.dev/sandbox-project/apps/WEB:1'), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'digest too short', path: '/deploy', body: deployBody(`${REPO}@sha256:325ea4ff`), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'digest too long', path: '/deploy', body: deployBody(`${REPO}@${DIGEST}0`), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'digest in uppercase hex', path: '/deploy', body: deployBody(`${REPO}@${DIGEST.toUpperCase().replace('SHA256', 'sha256')}`), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'sha512 digest', path: '/deploy', body: deployBody(`${REPO}@sha512:${'a'.repeat(128)}`), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'neither tag nor digest', path: '/deploy', body: deployBody(REPO), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'image with a URL scheme', path: '/deploy', body: deployBody(`https://${REPO}:1`), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'image with credentials', path: '/deploy', body: deployBody(`user:pass@${REPO}:1`), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'image with "..": apps/web/../api', path: '/deploy', body: deployBody('europe-docker.pkg.dev/sandbox-project/apps/web/../api:1'), expect: { status: 400, code: 'INVALID_IMAGE' } },
  { name: 'image with a line break', path: '/deploy', body: deployBody(`${REPO}:1\nimage: evil`), expect: { status: 400, code: 'INVALID_IMAGE' } },
  // Targets.
  { name: 'unknown target', path: '/deploy', body: deployBody(`${REPO}:1`, 'nope'), expect: { status: 404, code: 'UNKNOWN_TARGET' } },
  { name: 'target __proto__', path: '/deploy', body: deployBody(`${REPO}:1`, '__proto__'), expect: { status: 404, code: 'UNKNOWN_TARGET' } },
  { name: 'target constructor', path: '/deploy', body: deployBody(`${REPO}:1`, 'constructor'), expect: { status: 404, code: 'UNKNOWN_TARGET' } },
  { name: 'target ../web', path: '/deploy', body: deployBody(`${REPO}:1`, '../web'), expect: { status: 404, code: 'UNKNOWN_TARGET' } },
  { name: 'a target whose manifest names kube-system', path: '/deploy', body: deployBody(`${REPO}:1`, 'elsewhere'), expect: { status: 403, code: 'NAMESPACE_NOT_ALLOWED' } },
  { name: 'a target with a ClusterRole it may not apply', path: '/deploy', body: deployBody(`${REPO}:1`, 'clusterwide'), expect: { status: 403, code: 'KIND_NOT_ALLOWED' } },
  // Callers.
  { name: 'no token', path: '/deploy', auth: 'none', body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'forged token (unknown signing key)', path: '/deploy', auth: { oidc: 'forged' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'expired token', path: '/deploy', auth: { oidc: 'expired' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'token for another audience (/pubsub)', path: '/deploy', auth: { oidc: 'valid', audience: 'pubsub' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'alg: none token', path: '/deploy', auth: { oidc: 'alg-none' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'HS256 token (key confusion)', path: '/deploy', auth: { oidc: 'hs256' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'token with an unverified email', path: '/deploy', auth: { oidc: 'unverified-email' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'token of another service account', path: '/deploy', auth: { oidc: 'other-account' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'Bearer garbage', path: '/deploy', auth: { authorization: 'Bearer a.b.c' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'Basic credentials', path: '/deploy', auth: { authorization: 'Basic Y2k6cGFzc3dvcmQ=' }, body: deployBody(`${REPO}:1`), expect: unauthenticated },
  // Sizes: refused before authentication or parsing, JSON or not.
  { name: '2 MiB, Content-Length', path: '/deploy', stream: { total: 2 * MiB, declared: 2 * MiB }, expect: tooLarge },
  { name: '10 MiB, Content-Length', path: '/deploy', stream: { total: 10 * MiB, declared: 10 * MiB }, expect: tooLarge },
  { name: '2 MiB, chunked', path: '/deploy', stream: { total: 2 * MiB }, expect: tooLarge },
  { name: '10 MiB, chunked', path: '/deploy', stream: { total: 10 * MiB }, expect: tooLarge },
  { name: '10 MiB of octet-stream', path: '/deploy', contentType: 'application/octet-stream', stream: { total: 10 * MiB, declared: 10 * MiB }, expect: tooLarge },
  { name: 'GET', method: 'GET', path: '/deploy', expect: { status: 405, code: 'BAD_REQUEST' } },
  { name: 'PUT', method: 'PUT', path: '/deploy', body: deployBody(`${REPO}:1`), expect: { status: 405, code: 'BAD_REQUEST' } },
];

/** Paths that are not routes, however close. Authenticated as for /deploy, so only the path decides. */
const paths: Row[] = [
  ...['/deploy/../pubsub', '//deploy', '/%2e%2e/deploy', '/deploy/%2e%2e/pubsub', '/deploy/', '/DEPLOY', '/deploy%00', '/deploy;x', '/./deploy', '/deploy/.', '/webhooks/github/../../deploy', '/pubsub/', `/${'a'.repeat(4000)}`].map(
    (path): Row => ({ name: `path ${path.length > 40 ? `${path.slice(0, 12)}… (${path.length} chars)` : path}`, path, auth: { oidc: 'valid', audience: 'direct' }, body: deployBody(`${REPO}:1`), expect: notFound }),
  ),
  { name: 'a query string does not stand in for the token', path: '/deploy?token=x&target=web', auth: 'none', body: deployBody(`${REPO}:1`), expect: unauthenticated },
  { name: 'a query string does not change the body', path: `/deploy?image=${REPO}:1`, body: deployBody('europe-docker.pkg.dev.evil.com/x/web:1'), expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'absolute-form request target: routed by its path, still authenticated', path: 'http://evil.example/deploy', auth: 'none', body: deployBody(`${REPO}:1`), expect: unauthenticated },
];

const pubsub: Row[] = [
  { name: 'no token (as the emulator sends)', path: '/pubsub', auth: 'none', body: push({ target: 'web', image: `${REPO}:1` }), expect: unauthenticated },
  { name: 'token for /deploy', path: '/pubsub', auth: { oidc: 'valid', audience: 'direct' }, body: push({ target: 'web', image: `${REPO}:1` }), expect: unauthenticated },
  { name: 'alg: none token', path: '/pubsub', auth: { oidc: 'alg-none' }, body: push({ target: 'web', image: `${REPO}:1` }), expect: unauthenticated },
  { name: 'truncated envelope', path: '/pubsub', body: '{"message":{"data":', expect: acked('BAD_REQUEST') },
  { name: 'envelope without message', path: '/pubsub', body: json({ subscription: SUBSCRIPTION }), expect: acked('BAD_REQUEST') },
  { name: 'bare message data (an unwrapped push)', path: '/pubsub', body: json({ target: 'web', image: `${REPO}:1` }), expect: acked('BAD_REQUEST') },
  { name: 'data not base64', path: '/pubsub', body: push(null, { rawData: '!!!!not*base64' }), expect: acked('BAD_REQUEST') },
  { name: 'data not UTF-8', path: '/pubsub', body: push(Buffer.from([0xff, 0xfe, 0x7b, 0x7d])), expect: acked('BAD_REQUEST') },
  { name: 'data truncated JSON', path: '/pubsub', body: push(Buffer.from('{"target":"web",')), expect: acked('BAD_REQUEST') },
  { name: 'data nested 100 000 deep', path: '/pubsub', body: push(Buffer.from(deepArrays(100_000))), expect: acked('BAD_REQUEST') },
  { name: 'a deploy intent for a target without accept: [intent]', path: '/pubsub', body: push({ target: 'locked', image: `${REPO}:1` }), expect: acked('BAD_REQUEST') },
  { name: 'a valid intent from a subscription not allowed', path: '/pubsub', body: push({ target: 'web', image: `${REPO}:1` }, { subscription: 'projects/sandbox-project/subscriptions/anyone-can-publish' }), expect: acked('BAD_REQUEST') },
  { name: 'an intent with a lookalike image', path: '/pubsub', body: push({ target: 'web', image: 'europe-docker.pkg.dev.evil.com/sandbox-project/apps/web:1' }), expect: acked('IMAGE_NOT_ALLOWED') },
  { name: 'an intent naming another namespace', path: '/pubsub', body: push({ target: 'web', image: `${REPO}:1`, namespace: 'kube-system' }), expect: acked('BAD_REQUEST') },
  { name: 'Artifact Registry INSERT from a lookalike registry', path: '/pubsub', body: push({ action: 'INSERT', tag: 'europe-docker.pkg.dev.evil.com/sandbox-project/apps/web:v1' }), expect: { status: 200, outcome: 'ignored' } },
  { name: 'Artifact Registry INSERT with a short digest', path: '/pubsub', body: push({ action: 'INSERT', digest: `${REPO}@sha256:325ea4ff`, tag: `${REPO}:v1` }), expect: acked('BAD_REQUEST') },
  { name: 'Artifact Registry INSERT naming two repositories', path: '/pubsub', body: push({ action: 'INSERT', digest: `europe-docker.pkg.dev/sandbox-project/apps/api@${DIGEST}`, tag: `${REPO}:v1` }), expect: acked('BAD_REQUEST') },
  { name: 'Cloud Build SUCCESS whose data disagrees with its attributes', path: '/pubsub', body: push({ id: 'other', status: 'SUCCESS', results: { images: [{ name: `${REPO}:v1`, digest: DIGEST }] } }, { attributes: { buildId: 'b-1', status: 'SUCCESS' } }), expect: acked('BAD_REQUEST') },
  { name: 'CloudEvent (structured) of another type', path: '/pubsub', contentType: 'application/cloudevents+json', body: json({ specversion: '1.0', type: 'google.cloud.storage.object.v1.finalized', source: '//storage', id: '1', data: JSON.parse(push({ target: 'web', image: `${REPO}:1` })) as unknown }), expect: acked('BAD_REQUEST') },
  { name: 'CloudEvent (binary) without ce-id', path: '/pubsub', headers: { 'ce-specversion': '1.0', 'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished', 'ce-source': '//pubsub' }, body: push({ target: 'web', image: `${REPO}:1` }), expect: acked('BAD_REQUEST') },
  { name: 'text/plain', path: '/pubsub', contentType: 'text/plain', body: push({ target: 'web', image: `${REPO}:1` }), expect: acked('UNSUPPORTED_MEDIA_TYPE') },
  { name: '101 attributes', path: '/pubsub', body: push({ action: 'DELETE' }, { attributes: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 'v'])) }), expect: acked('BAD_REQUEST') },
  { name: 'a message id with path characters', path: '/pubsub', body: push({ target: 'web', image: `${REPO}:1` }, { messageId: '../../etc/passwd' }), expect: acked('BAD_REQUEST') },
  { name: '2 MiB, Content-Length', path: '/pubsub', stream: { total: 2 * MiB, declared: 2 * MiB }, expect: tooLarge },
  { name: '10 MiB, chunked', path: '/pubsub', stream: { total: 10 * MiB }, expect: tooLarge },
];

const otherBody = withField(githubPush, 'after', 'f'.repeat(40));
const webhooks: Row[] = [
  { name: 'no signature', path: '/webhooks/github', auth: 'none', headers: github(), body: githubPush, expect: unauthenticated },
  { name: 'a valid signature of a different body', path: '/webhooks/github', auth: { hub: sign(githubPush) }, headers: github(), body: otherBody, expect: unauthenticated },
  { name: 'a signature with the wrong secret', path: '/webhooks/github', auth: { hub: sign(githubPush, 'guess') }, headers: github(), body: githubPush, expect: unauthenticated },
  { name: 'an sha1 signature', path: '/webhooks/github', auth: { hub: `sha1=${createHmac('sha1', GITHUB_SECRET).update(githubPush).digest('hex')}` }, headers: github(), body: githubPush, expect: unauthenticated },
  { name: 'two signatures in one header', path: '/webhooks/github', auth: { hub: `${sign(githubPush)}, ${sign(githubPush)}` }, headers: github(), body: githubPush, expect: unauthenticated },
  // duplicate detection: issue 8 event ids
  { name: 'a delivery replayed as is (its rule deploys an image web does not allow)', path: '/webhooks/github', headers: github(), body: githubPush, expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  // duplicate detection: issue 8 event ids
  { name: 'the same body and signature with a new X-GitHub-Delivery', path: '/webhooks/github', headers: github('push', 'c0ffee00-0000-4000-8000-000000000001'), body: githubPush, expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'the same body and signature as another event (workflow_run)', path: '/webhooks/github', headers: github('workflow_run'), body: githubPush, expect: badRequest },
  { name: 'signed truncated JSON', path: '/webhooks/github', headers: github(), body: githubPush.slice(0, 200), expect: badRequest },
  { name: 'signed invalid UTF-8', path: '/webhooks/github', headers: github(), body: invalidUtf8, expect: badRequest },
  { name: 'signed arrays nested 100 000 deep', path: '/webhooks/github', headers: github(), body: deepArrays(100_000), expect: badRequest },
  { name: 'signed but form-encoded', path: '/webhooks/github', contentType: 'application/x-www-form-urlencoded', headers: github(), body: `payload=${encodeURIComponent(githubPush)}`, expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' } },
  { name: 'signed, without X-GitHub-Event', path: '/webhooks/github', headers: { 'x-github-delivery': DELIVERY }, body: githubPush, expect: badRequest },
  { name: 'signed, X-GitHub-Event with shell characters', path: '/webhooks/github', headers: github('push;rm -rf /'), body: githubPush, expect: badRequest },
  { name: 'signed push whose head commit is not a SHA', path: '/webhooks/github', headers: github(), body: withField(githubPush, 'head_commit', { id: '../../HEAD' }), expect: badRequest },
  { name: 'signed push from a lookalike repository', path: '/webhooks/github', headers: github(), body: withField(githubPush, 'repository', { full_name: 'Codertocat/Hello-World.evil' }), expect: { status: 202, outcome: 'ignored' } },
  { name: '10 MiB, Content-Length', path: '/webhooks/github', headers: github(), stream: { total: 10 * MiB, declared: 10 * MiB }, expect: tooLarge },
  { name: '2 MiB, chunked', path: '/webhooks/github', headers: github(), stream: { total: 2 * MiB }, expect: tooLarge },

  { name: 'no token', path: '/webhooks/gitlab', auth: 'none', headers: gitlab(), body: gitlabPush, expect: unauthenticated },
  { name: 'a wrong token', path: '/webhooks/gitlab', auth: { gitlab: 'guess' }, headers: gitlab(), body: gitlabPush, expect: unauthenticated },
  { name: 'a prefix of the token', path: '/webhooks/gitlab', auth: { gitlab: GITLAB_TOKEN.slice(0, -1) }, headers: gitlab(), body: gitlabPush, expect: unauthenticated },
  { name: 'truncated JSON', path: '/webhooks/gitlab', headers: gitlab(), body: gitlabPush.slice(0, 100), expect: badRequest },
  { name: 'a Push Hook whose checkout_sha is not a SHA', path: '/webhooks/gitlab', headers: gitlab(), body: withField(gitlabPush, 'checkout_sha', 'HEAD~1'), expect: badRequest },
  // duplicate detection: issue 8 event ids
  { name: 'a delivery replayed as is (its rule deploys an image web does not allow)', path: '/webhooks/gitlab', headers: gitlab(), body: gitlabPush, expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  // duplicate detection: issue 8 event ids
  { name: 'the same delivery with a new X-Gitlab-Event-UUID', path: '/webhooks/gitlab', headers: gitlab('Push Hook', 'c0ffee00-0000-4000-8000-000000000002'), body: gitlabPush, expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'an event not acted on', path: '/webhooks/gitlab', headers: gitlab('System Hook'), body: gitlabPush, expect: { status: 202, outcome: 'ignored' } },
  { name: 'text/plain', path: '/webhooks/gitlab', contentType: 'text/plain', headers: gitlab(), body: gitlabPush, expect: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' } },
  { name: '10 MiB, chunked', path: '/webhooks/gitlab', headers: gitlab(), stream: { total: 10 * MiB }, expect: tooLarge },
];

const scheduler: Row[] = [
  { name: 'no token', path: '/scheduler', auth: 'none', body: json({ target: 'web' }), expect: unauthenticated },
  { name: 'token for /pubsub', path: '/scheduler', auth: { oidc: 'valid', audience: 'pubsub' }, body: json({ target: 'web' }), expect: unauthenticated },
  { name: 'alg: none token', path: '/scheduler', auth: { oidc: 'alg-none' }, body: json({ target: 'web' }), expect: unauthenticated },
  { name: 'expired token', path: '/scheduler', auth: { oidc: 'expired' }, body: json({ target: 'web' }), expect: unauthenticated },
  { name: 'invalid JSON', path: '/scheduler', body: '{"target":web}', expect: badRequest },
  { name: 'an unknown field', path: '/scheduler', body: json({ target: 'web', force: true }), expect: badRequest },
  { name: 'target __proto__', path: '/scheduler', body: json({ target: '__proto__' }), expect: { status: 404, code: 'UNKNOWN_TARGET' } },
  { name: 'an image outside the allow-list', path: '/scheduler', body: json({ target: 'web', image: 'docker.io/library/nginx:1' }), expect: { status: 403, code: 'IMAGE_NOT_ALLOWED' } },
  { name: 'a reconcile of a target never deployed', path: '/scheduler', body: json({ target: 'locked' }), expect: { status: 404, code: 'NOT_DEPLOYED' } },
  { name: '2 MiB, chunked', path: '/scheduler', stream: { total: 2 * MiB }, expect: tooLarge },
];

const health: Row[] = [
  { name: 'POST', path: '/healthz', body: '{}', expect: { status: 405, code: 'BAD_REQUEST' } },
  { name: 'PUT', method: 'PUT', path: '/healthz', body: '{}', expect: { status: 405, code: 'BAD_REQUEST' } },
  { name: 'trailing slash', method: 'GET', path: '/healthz/', expect: notFound },
  { name: 'double slash', method: 'GET', path: '//healthz', expect: notFound },
  { name: 'with a query string', method: 'GET', path: '/healthz?probe=1', expect: { status: 200, outcome: 'ok' } },
  { name: 'GET with a 10 MiB body', method: 'GET', path: '/healthz', stream: { total: 10 * MiB, declared: 10 * MiB }, expect: tooLarge },
];

export const CORPUS: Row[] = [...deploy, ...paths, ...pubsub, ...webhooks, ...scheduler, ...health];
