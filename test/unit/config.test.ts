import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { configProblems } from '../support/config.ts';

const problems = (yaml: string, file?: string) => configProblems(yaml, {}, file);

test('every problem is listed, each with its path', () => {
  const got = problems(`
auth: { direct: none }
clusters:
  prod: { gke: { project: p, location: l, name: c } }
  both: { gke: { project: p, location: l, name: c }, inCluster: true }
targets:
  web:
    cluster: prd
    namespace: Web
    manifests: [missing.yaml]
    images: [europe-docker.pkg.dev/p/apps/web]
  api:
    cluster: prod
    namespace: api
    images: ["repo:tag"]
    colour: blue
`);
  const expected = [
    /^clusters\.both: must have exactly one of gke, endpoint, inCluster or kubeconfig/,
    /^targets\.web\.namespace: must be a DNS-1123 label/,
    /^targets\.api\.images\.0: must be an image repository without tag or digest/,
    /^targets\.api: Unrecognized key: "colour"/,
    /^targets\.web\.cluster: unknown cluster "prd"$/,
    /^targets\.web\.manifests\.0: \/nowhere\/missing\.yaml: ENOENT/,
  ];
  for (const re of expected) assert.ok(got.some((p) => re.test(p)), `${re} not in:\n${got.join('\n')}`);
});

test('auth.direct must be stated: there is no unauthenticated default', () => {
  const got = problems('clusters: {}\ntargets: {}\n');
  assert.ok(got.some((p) => p.startsWith('auth:')), got.join('\n'));
});

test('a target needs exactly one of manifests or deployment', () => {
  const got = problems(`
auth: { direct: none }
clusters: { c: { inCluster: true } }
targets:
  t: { cluster: c, namespace: n, images: [r.io/a/b], manifests: [x.yaml], deployment: d }
`);
  assert.ok(got.some((p) => p.startsWith('targets.t: needs exactly one of manifests')), got.join('\n'));
});

test('TLS verification cannot be turned off: http endpoints and insecure kubeconfigs are refused', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
  writeFileSync(path.join(dir, 'ca.crt'), 'x');
  writeFileSync(path.join(dir, 'token'), 'x');
  writeFileSync(
    path.join(dir, 'kubeconfig'),
    `apiVersion: v1
kind: Config
clusters: [{ name: k, cluster: { server: "https://10.0.0.1", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: k, context: { cluster: k, user: u } }]
current-context: k
`,
  );
  writeFileSync(
    path.join(dir, 'deployer.yaml'),
    `auth: { direct: none }
clusters:
  plain: { endpoint: { server: "http://10.0.0.1", caFile: ca.crt, tokenFile: token } }
  insecure: { kubeconfig: { path: kubeconfig } }
  flag: { endpoint: { server: "https://10.0.0.1", caFile: ca.crt, tokenFile: token, skipTLSVerify: true } }
targets: {}
`,
  );
  let err: unknown;
  try {
    loadConfigFile(path.join(dir, 'deployer.yaml'));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError);
  const got = err.problems.join('\n');
  assert.match(got, /clusters\.plain\.endpoint\.server: must be an https:\/\/ URL/);
  assert.match(got, /clusters\.insecure\.kubeconfig: cluster "k" sets insecure-skip-tls-verify/);
  assert.match(got, /clusters\.flag\.endpoint: Unrecognized key: "skipTLSVerify"/);
});

test('a valid file resolves paths against its folder and parses manifests', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
  writeFileSync(path.join(dir, 'm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n---\n');
  const config = parseConfig(
    `auth: { direct: none }
clusters: { c: { gke: { project: p, location: l, name: n } } }
targets: { t: { cluster: c, namespace: n, manifests: [m.yaml], images: [r.io/a/b] } }
`,
    path.join(dir, 'deployer.yaml'),
  );
  const t = config.targets.get('t');
  assert.deepEqual(t?.manifests, [path.join(dir, 'm.yaml')]);
  assert.equal(t?.objects.length, 1);
  assert.deepEqual(config.clusters.get('c'), { gke: { project: 'p', location: 'l', name: 'n', cacheTtlSeconds: 600 } });
});

test('auth.pubsub: none, OIDC or token: none, each with an optional subscriptions allow-list of full names', () => {
  const auth = (pubsub: string) =>
    parseConfig(`auth: { direct: none, pubsub: ${pubsub} }\nclusters: {}\ntargets: {}\n`, '/nowhere/deployer.yaml').auth.pubsub;
  assert.equal(auth('none'), 'none');
  assert.deepEqual(auth('{ token: none, subscriptions: [projects/p/subscriptions/s] }'), { token: 'none', subscriptions: ['projects/p/subscriptions/s'] });
  assert.deepEqual(auth('{ audience: https://x/pubsub, serviceAccounts: [push@p.iam.gserviceaccount.com] }'), {
    audience: 'https://x/pubsub', serviceAccounts: ['push@p.iam.gserviceaccount.com'],
  });
  const bad = (pubsub: string) => problems(`auth: { direct: none, pubsub: ${pubsub} }\nclusters: {}\ntargets: {}\n`);
  assert.match(bad('{ token: none, subscriptions: [deployer-gcr] }').join('\n'), /^auth\.pubsub\.subscriptions\.0: must be a full subscription name, projects\/<project>\/subscriptions\/<name>$/m);
  assert.match(bad('{ token: none, subscriptions: [projects/p/topics/gcr] }').join('\n'), /subscriptions\.0: must be a full subscription name/);
  assert.match(bad('{ token: none, subscriptions: [] }').join('\n'), /auth\.pubsub\.subscriptions/);
  assert.match(bad('{ token: maybe }').join('\n'), /^auth\.pubsub: must be none, \{audience, serviceAccounts, subscriptions\?\} or \{token: none, subscriptions\?\}$/m);
  assert.match(bad('{ audience: a, serviceAccounts: [push@p.iam.gserviceaccount.com], subscription: [projects/p/subscriptions/s] }').join('\n'), /Unrecognized key: "subscription"/);
});

test('targets.accept: only the intent kind, off by default, and only where /pubsub is served', () => {
  const target = 'cluster: c, namespace: n, deployment: d, images: [r.io/a/b]';
  const config = parseConfig(
    `auth: { direct: none, pubsub: none }\nclusters: { c: { inCluster: true } }\ntargets: { a: { ${target} }, b: { ${target}, accept: [intent] } }\n`,
    '/nowhere/deployer.yaml',
  );
  assert.deepEqual(config.targets.get('a')?.accept, []);
  assert.deepEqual(config.targets.get('b')?.accept, ['intent']);
  assert.match(
    problems(`auth: { direct: none, pubsub: none }\nclusters: { c: { inCluster: true } }\ntargets: { a: { ${target}, accept: [artifact-registry] } }\n`).join('\n'),
    /^targets\.a\.accept\.0: must be intent \(Artifact Registry and Cloud Build messages reach a target through rules\)$/m,
  );
  assert.deepEqual(
    problems(`auth: { direct: none }\nclusters: { c: { inCluster: true } }\ntargets: { a: { ${target}, accept: [intent] } }\n`),
    ['targets.a.accept: intent needs auth.pubsub (without it /pubsub is not served)'],
  );
});

test('clusters.<name>.gke.endpoint and membership: one of the kinds, a full membership name', () => {
  const config = parseConfig(
    `auth: { direct: none }
clusters:
  gw: { gke: { project: p, location: l, name: n, endpoint: connect-gateway, membership: projects/p/locations/global/memberships/m } }
  dns: { gke: { project: p, location: l, name: n, endpoint: dns } }
targets: { t: { cluster: gw, namespace: n, deployment: web, images: [r.io/a/b] } }
`,
    '/nowhere/deployer.yaml',
  );
  assert.deepEqual(config.clusters.get('gw'), { gke: { project: 'p', location: 'l', name: 'n', cacheTtlSeconds: 600, endpoint: 'connect-gateway', membership: 'projects/p/locations/global/memberships/m' } });
  const got = problems(`
auth: { direct: none }
clusters:
  a: { gke: { project: p, location: l, name: n, endpoint: private } }
  b: { gke: { project: p, location: l, name: n, endpoint: connect-gateway, membership: m } }
targets: { t: { cluster: a, namespace: n, deployment: web, images: [r.io/a/b] } }
`);
  assert.equal(got.length, 2, got.join('\n'));
  assert.match(got[0] ?? '', /^clusters\.a\.gke\.endpoint: must be auto, dns, internal, public or connect-gateway/);
  assert.match(got[1] ?? '', /^clusters\.b\.gke\.membership: must be projects\/PROJECT\/locations\/LOCATION\/memberships\/NAME/);
});
