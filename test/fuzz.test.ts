// Property-based fuzzing of every request parser (src/sources/*): whatever arrives, the only
// exception that may escape is a DeployError (the router turns it into a JSON answer); anything
// else is a crash, a 500 or a leaked stack. Then the whole router, over real sockets with the
// body guard in front and a deployer stub that records calls: refused requests never deploy.
// Seeded and bounded, so a run is repeatable and takes a few seconds.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as ff from '@google-cloud/functions-framework';
import type { Request } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import fc from 'fast-check';
import { parseConfig, type Config } from '../src/config/load.ts';
import type { Rule } from '../src/config/schema.ts';
import type { DeployIntent } from '../src/core/intent.ts';
import type { Deployer } from '../src/core/intent.ts';
import { DeployError } from '../src/errors.ts';
import { OidcVerifier } from '../src/sources/auth/oidc.ts';
import { verifyHubSignature, verifyToken } from '../src/sources/auth/webhook-secret.ts';
import { guardServer } from '../src/sources/body-limit.ts';
import { directSource } from '../src/sources/direct.ts';
import { eventHeader, header, isZeroSha, refTarget } from '../src/sources/git-event.ts';
import { githubSource, mapGithubEvent } from '../src/sources/github.ts';
import { gitlabSource, mapGitlabEvent } from '../src/sources/gitlab.ts';
import { bearerToken, logTraceOf, parseJson, rawBody, requireContentType, traceparentOf } from '../src/sources/http.ts';
import { decodeJson, interpretMessage } from '../src/sources/pubsub-messages.ts';
import { decodeBase64, MESSAGE_PUBLISHED, pubsubSource } from '../src/sources/pubsub.ts';
import { router } from '../src/sources/router.ts';
import { schedulerSource } from '../src/sources/scheduler.ts';
import { rawRequest } from './hostile/client.ts';
import { fixture } from './support/config.ts';

const SEED = 20261201;
const RUNS = 300;
fc.configureGlobal({ seed: SEED, numRuns: RUNS, endOnFailure: true });

const REPO = 'europe-docker.pkg.dev/sandbox-project/apps/web';
const GHCR = 'ghcr.io/codertocat/hello-world';
const SECRET = 'fuzz-webhook-secret';
process.env.FUZZ_GITHUB_SECRET = SECRET;
process.env.FUZZ_GITLAB_TOKEN = SECRET;

const rules = [
  { source: 'artifact-registry', repository: REPO, tags: 'v*', targets: ['web'] },
  { source: 'artifact-registry', repository: REPO, targets: ['pinned'] },
  { source: 'cloud-build', repository: REPO, tags: '>=1.0.0 <2', targets: ['web'] },
  { source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] },
  { source: 'github', repository: 'Codertocat/Hello-World', tags: 'v*', image: `${GHCR}:\${tag}`, targets: ['web'] },
  { source: 'gitlab', repository: 'mike/diaspora', image: 'registry.example.com/mike/diaspora:${shortSha}', targets: ['web'] },
] as Rule[];
const targets = new Map([['web', { accept: ['intent'] }], ['pinned', { accept: [] }]]);

/** Runs `f`; a DeployError is a refusal (fine), anything else fails the property with the input. */
function refusedOrDone(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (err instanceof DeployError) return;
    throw err;
  }
}

async function refusedOrDoneAsync(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (err) {
    if (err instanceof DeployError) return;
    throw err;
  }
}

function request(headers: Record<string, string | string[]>, body: Buffer | undefined, path = '/'): Request {
  return { method: 'POST', path, headers, rawBody: body } as unknown as Request;
}

function json(name: string): unknown {
  return JSON.parse(fixture(`events/${name}.json`)) as unknown;
}

/** Every path (as key lists) into a JSON value, the root included. */
function paths(value: unknown, at: string[] = []): string[][] {
  const here = [at];
  if (typeof value !== 'object' || value === null) return here;
  return here.concat(...Object.entries(value).map(([k, v]) => paths(v, [...at, k])));
}

function withAt(value: unknown, path: string[], replacement: unknown, remove: boolean): unknown {
  if (path.length === 0) return replacement;
  const copy = structuredClone(value) as Record<string, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  const last = path.at(-1)!;
  if (remove) delete node[last];
  else node[last] = replacement;
  return copy;
}

/** A recorded payload with one to three fields replaced by anything JSON, or removed; `intact`: as often, unchanged. */
function mutated(value: unknown, intact = false): fc.Arbitrary<unknown> {
  const all = paths(value);
  const change = fc.tuple(fc.nat(all.length - 1), fc.jsonValue({ maxDepth: 3 }), fc.boolean());
  const changed = fc.array(change, { minLength: 1, maxLength: 3 }).map((changes) =>
    changes.reduce((v, [i, replacement, remove]) => {
      const path = all[i]!;
      try {
        return withAt(v, path, replacement, remove);
      } catch {
        return v; // an earlier change removed the parent
      }
    }, value),
  );
  return intact ? fc.oneof(fc.constant(value), changed) : changed;
}

const anyJson = fc.jsonValue({ maxDepth: 4 });
const bytes = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme-ascii' }));
/** As Node hands them over: one string per header (repeats are joined with ", " or dropped). */
const headerValue = text;

describe('request parsers: only DeployError escapes', () => {
  test('base64: anything decodes or is refused; what Pub/Sub encodes decodes back', () => {
    fc.assert(fc.property(fc.oneof(text, fc.base64String()), (s) => refusedOrDone(() => decodeBase64(s))));
    fc.assert(
      fc.property(bytes, (b) => {
        assert.deepEqual(decodeBase64(b.toString('base64')), b);
        assert.deepEqual(decodeBase64(b.toString('base64url')), b);
      }),
    );
  });

  test('message data as JSON, and the three kinds of message', () => {
    fc.assert(fc.property(fc.option(bytes, { nil: undefined }), (b) => refusedOrDone(() => decodeJson(b))));
    const attributes = fc.oneof(
      fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 })),
      fc.record({ buildId: fc.string(), status: fc.constantFrom('SUCCESS', 'WORKING', 'FAILURE', '') }),
    );
    const build = JSON.parse(Buffer.from((json('pubsub-cloud-build-success') as { message: { data: string } }).message.data, 'base64').toString()) as unknown;
    const payloads = fc.oneof(
      anyJson,
      mutated(build),
      mutated({ action: 'INSERT', digest: `${REPO}@sha256:${'a'.repeat(64)}`, tag: `${REPO}:v1.4.0` }),
      mutated({ target: 'web', image: `${REPO}:1`, dryRun: true }),
    );
    const data = fc.oneof(bytes, payloads.map((p) => Buffer.from(JSON.stringify(p) ?? '')));
    fc.assert(
      fc.property(fc.option(data, { nil: undefined }), attributes, (d, a) => refusedOrDone(() => interpretMessage(d, a, rules))),
    );
  });

  test('the push envelope and CloudEvents (binary and structured), as the /pubsub source reads them', () => {
    const source = pubsubSource({ token: 'none', subscriptions: ['projects/sandbox-project/subscriptions/gke-deployer-gcr'] }, { rules, targets }, new OidcVerifier());
    const bodies = fc.oneof(
      anyJson,
      mutated(json('pubsub-artifact-registry-insert')),
      mutated(json('pubsub-cloud-build-success')),
      mutated(json('pubsub-intent')),
      mutated(json('pubsub-eventarc-structured')),
    );
    const raw = fc.oneof(bytes, bodies.map((b) => Buffer.from(JSON.stringify(b) ?? 'null')));
    const headers = fc.record(
      {
        'content-type': fc.constantFrom('application/json', 'application/cloudevents+json; charset=utf-8', 'text/plain', 'application/json;', ''),
        'ce-specversion': fc.constantFrom('1.0', '0.3'),
        'ce-type': fc.constantFrom(MESSAGE_PUBLISHED, 'google.cloud.audit.log.v1.written'),
        'ce-source': text,
        'ce-id': text,
      },
      { requiredKeys: ['content-type'] },
    );
    fc.assert(fc.property(headers, fc.option(raw, { nil: undefined }), (h, b) => refusedOrDone(() => source.receive(request(h, b, '/pubsub')))));
  });

  test('GitHub and GitLab events to intents, and their sources', async () => {
    const githubPayloads = fc.oneof(
      anyJson,
      mutated(json('github-push')),
      mutated(json('github-push-tag')),
      mutated(json('github-registry_package')),
      mutated(json('github-workflow_run')),
    );
    const githubEvents = fc.oneof(fc.constantFrom('push', 'registry_package', 'workflow_run', 'ping'), fc.string());
    fc.assert(fc.property(githubEvents, githubPayloads, (e, p) => refusedOrDone(() => mapGithubEvent(e, p, rules))));

    const gitlabPayloads = fc.oneof(anyJson, mutated(json('gitlab-push')), mutated(json('gitlab-tag_push')), mutated(json('gitlab-pipeline')));
    const gitlabEvents = fc.oneof(fc.constantFrom('Push Hook', 'Tag Push Hook', 'Pipeline Hook'), fc.string());
    fc.assert(fc.property(gitlabEvents, gitlabPayloads, (e, p) => refusedOrDone(() => mapGitlabEvent(e, p, rules))));

    const github = githubSource({ secretEnv: 'FUZZ_GITHUB_SECRET' }, rules);
    const gitlab = gitlabSource({ tokenEnv: 'FUZZ_GITLAB_TOKEN' }, rules);
    const headers = fc.dictionary(
      fc.constantFrom('content-type', 'x-github-event', 'x-github-delivery', 'x-gitlab-event', 'x-gitlab-event-uuid', 'x-hub-signature-256', 'x-gitlab-token'),
      headerValue,
    );
    const body = fc.oneof(bytes, githubPayloads.map((p) => Buffer.from(JSON.stringify(p) ?? '')));
    await fc.assert(
      fc.asyncProperty(headers, fc.option(body, { nil: undefined }), async (h, b) => {
        for (const source of [github, gitlab]) {
          await refusedOrDoneAsync(() => source.authenticate(request(h, b)));
          refusedOrDone(() => source.receive(request(h, b)));
        }
      }),
    );
  });

  test('direct and scheduler bodies', () => {
    const direct = directSource('none', new OidcVerifier());
    const scheduler = schedulerSource('none', new OidcVerifier());
    const body = fc.oneof(bytes, fc.oneof(anyJson, mutated({ target: 'web', image: `${REPO}:1`, dryRun: false })).map((p) => Buffer.from(JSON.stringify(p) ?? '')));
    const contentType = fc.constantFrom('application/json', 'APPLICATION/JSON; charset=utf-8', 'text/plain', '');
    fc.assert(
      fc.property(contentType, fc.option(body, { nil: undefined }), (type, b) => {
        for (const source of [direct, scheduler]) refusedOrDone(() => source.receive(request({ 'content-type': type }, b)));
      }),
    );
  });

  test('the HTTP helpers and the shared-secret checks', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 24 }), headerValue), fc.option(bytes, { nil: undefined }), text, (h, b, s) => {
        const req = request(h, b);
        refusedOrDone(() => rawBody(req));
        refusedOrDone(() => requireContentType(req, 'application/json'));
        refusedOrDone(() => parseJson(b ?? Buffer.alloc(0)));
        refusedOrDone(() => bearerToken(req));
        refusedOrDone(() => logTraceOf(traceparentOf(req.headers), "p"));
        refusedOrDone(() => eventHeader(req, s));
        refusedOrDone(() => header(req, s));
        refusedOrDone(() => refTarget(s));
        refusedOrDone(() => isZeroSha(s));
        refusedOrDone(() => verifyHubSignature(SECRET, b ?? Buffer.alloc(0), h['x-hub-signature-256'] ?? s));
        refusedOrDone(() => verifyToken(SECRET, h['x-gitlab-token'] ?? s, 'X-Gitlab-Token'));
      }),
    );
  });
});

describe('the router over real sockets, with a deployer stub', () => {
  const calls: DeployIntent[] = [];
  const stub: Deployer = (intent) => {
    calls.push(intent);
    return Promise.resolve({ status: 'applied', target: intent.target, cluster: 'c', namespace: 'n', image: intent.image ?? 'recorded', requestId: intent.requestId, dryRun: intent.dryRun, objects: [], elapsedMs: 0 });
  };
  const servers: http.Server[] = [];
  let certs: http.Server;
  let seq = 0;

  /** A certs endpoint with no keys: every ID token fails its signature check, without the network. */
  before(async () => {
    certs = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }).end('{}'));
    certs.listen(0, '127.0.0.1');
    await once(certs, 'listening');
  });
  after(async () => {
    for (const s of [...servers, certs]) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  async function serve(config: Config): Promise<number> {
    const name = `fuzz-${++seq}`;
    ff.http(name, router({ config, deploy: stub, log: () => undefined }));
    const server = getTestServer(name);
    guardServer(server, () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    return (server.address() as AddressInfo).port;
  }

  const target = 'cluster: c, namespace: n, deployment: d, images: [europe-docker.pkg.dev/sandbox-project/apps/web]';
  const configWith = (auth: string) =>
    parseConfig(
      `auth: ${auth}\nclusters: { c: { inCluster: true } }\ntargets: { web: { ${target}, accept: [intent] }, pinned: { ${target} } }\n` +
        `rules: ${JSON.stringify(rules)}\n`,
      '/nowhere/deployer.yaml',
    );

  const trick = fc.oneof(
    fc.constantFrom('/deploy', '/pubsub', '/scheduler', '/webhooks/github', '/webhooks/gitlab', '/healthz', '/deploy/', '//deploy', '/deploy/../pubsub', '/%2e%2e/deploy', '/deploy?x=1'),
    fc.webPath(),
  );
  const method = fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE');
  const contentType = fc.oneof(
    { weight: 4, arbitrary: fc.constant('application/json') },
    { weight: 1, arbitrary: fc.constantFrom('application/cloudevents+json', 'text/plain', 'application/x-www-form-urlencoded') },
  );
  const encoded = (a: fc.Arbitrary<unknown>) => a.map((p) => Buffer.from(JSON.stringify(p) ?? ''));
  const body = fc.oneof(bytes, encoded(anyJson));
  /** An intent as /deploy, /scheduler and Pub/Sub read it: known and unknown targets, allowed and foreign images. */
  const intent = fc
    .record(
      {
        target: fc.constantFrom('web', 'pinned', 'nope', '__proto__', ''),
        image: fc.constantFrom(`${REPO}:1`, `${REPO}@sha256:${'a'.repeat(64)}`, 'europe-docker.pkg.dev.evil.com/sandbox-project/apps/web:1', `${REPO}`),
        dryRun: fc.boolean(),
      },
      { requiredKeys: ['target'] },
    )
    .chain((i) => mutated(i, true));
  const registry = fc.record({ action: fc.constantFrom('INSERT', 'DELETE'), tag: fc.constantFrom(`${REPO}:v1`, `${REPO}:latest`) }).chain((r) => mutated(r, true));
  const envelope = (data: fc.Arbitrary<unknown>) =>
    data.map((d) => ({
      message: { data: Buffer.from(JSON.stringify(d) ?? '').toString('base64'), messageId: '4242' },
      subscription: 'projects/sandbox-project/subscriptions/gke-deployer',
    }));
  /** Each route with its own payloads, sometimes intact (zero changes), plus path tricks with anything. */
  const routed = fc.oneof(
    fc.record({ path: fc.constant('/deploy'), body: encoded(intent) }),
    fc.record({ path: fc.constant('/scheduler'), body: encoded(intent) }),
    fc.record({ path: fc.constant('/pubsub'), body: encoded(fc.oneof(envelope(intent), envelope(registry), mutated(json('pubsub-intent'), true))) }),
    fc.record({ path: fc.constant('/webhooks/github'), body: encoded(mutated(json('github-push'), true)) }),
    fc.record({ path: fc.constant('/webhooks/gitlab'), body: encoded(mutated(json('gitlab-push'), true)) }),
    fc.record({ path: trick, body }),
  );
  const headers = fc.record(
    {
      authorization: fc.oneof(fc.constant('Bearer eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImNpQHAuaWFtLmdzZXJ2aWNlYWNjb3VudC5jb20ifQ.'), fc.string().map((s) => `Bearer ${s}`)),
      'x-github-event': fc.constantFrom('push', 'ping', 'workflow_run'),
      'x-gitlab-event': fc.constantFrom('Push Hook', 'Pipeline Hook'),
      'x-hub-signature-256': fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256=${h}`)),
      'x-gitlab-token': fc.string(),
    },
    { requiredKeys: [] },
  );
  const printable = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).filter(([, v]) => /^[\t\x20-\x7e]*$/.test(v)));
  const DOCUMENTED = new Set([200, 202, 400, 401, 403, 404, 405, 409, 413, 415, 502, 503]);

  test('authenticated routes: hostile requests are answered in JSON and never reach the deployer', async () => {
    const port = await serve(
      configWith(
        `{ direct: { audience: https://d/deploy, serviceAccounts: [ci@p.iam.gserviceaccount.com] }, pubsub: { audience: https://d/pubsub, serviceAccounts: [ci@p.iam.gserviceaccount.com] }, ` +
          `scheduler: { audience: https://d/scheduler, serviceAccounts: [ci@p.iam.gserviceaccount.com] }, github: { secretEnv: FUZZ_GITHUB_SECRET }, gitlab: { tokenEnv: FUZZ_GITLAB_TOKEN }, ` +
          `certsUrl: "http://127.0.0.1:${(certs.address() as AddressInfo).port}/certs" }`,
      ),
    );
    calls.length = 0;
    await fc.assert(
      fc.asyncProperty(routed, method, contentType, headers, async ({ path, body: b }, verb, type, h) => {
        const a = await rawRequest(port, { method: verb, path, headers: { ...printable(h), 'content-type': type }, body: verb === 'GET' ? undefined : b });
        assert.ok(DOCUMENTED.has(a.status), `${a.status} ${a.text}`);
        assert.ok(a.json, `not JSON: ${a.text}`);
        if (a.status !== 200) assert.equal(a.json.status === 'error' || a.json.status === 'ignored', true, a.text);
      }),
      { numRuns: 150 },
    );
    assert.deepEqual(calls, []);
  });

  test('open routes: the deployer is called only for a request answered as deployed, with well-formed intents', async (t) => {
    const port = await serve(
      configWith('{ direct: none, pubsub: none, scheduler: none, github: { secretEnv: FUZZ_GITHUB_SECRET }, gitlab: { tokenEnv: FUZZ_GITLAB_TOKEN } }'),
    );
    let deployed = 0;
    await fc.assert(
      fc.asyncProperty(routed, contentType, fc.boolean(), async ({ path, body: b }, type, signed) => {
        const before = calls.length;
        const h: Record<string, string> = { 'content-type': type, 'x-github-event': 'push', 'x-gitlab-event': 'Push Hook' };
        if (signed) Object.assign(h, { 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(b).digest('hex')}`, 'x-gitlab-token': SECRET });
        const a = await rawRequest(port, { path, headers: h, body: b });
        assert.ok(a.json, `not JSON: ${a.text}`);
        assert.ok(DOCUMENTED.has(a.status), `${a.status} ${a.text}`);
        const made = calls.slice(before);
        if (a.json.status === 'error' || a.json.status === 'ignored') assert.deepEqual(made, [], a.text);
        if (made.length > 0) {
          deployed++;
          assert.equal(a.status, 200, a.text);
          for (const i of made) {
            assert.ok(typeof i.target === 'string' && i.target.length <= 512 && typeof i.dryRun === 'boolean' && typeof i.requestId === 'string', JSON.stringify(i));
            assert.ok(i.image === undefined || (typeof i.image === 'string' && i.image.length <= 512), JSON.stringify(i));
            // A Pub/Sub intent reaches the deployer only for a target that accepts intents.
            if (i.source === 'pubsub/intent') assert.notEqual(i.target, 'pinned');
          }
        }
      }),
      { numRuns: 200 },
    );
    // The generators are meant to reach the deployer sometimes, or this property says little.
    t.diagnostic(`${deployed} of 200 generated requests deployed`);
    assert.ok(deployed > 0, 'no generated request deployed');
  });
});
