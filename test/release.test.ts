// Releases from an OCI artifact (issue 18), end to end through the sandbox: CI's half is
// the real oras CLI pushing images and manifests releases (Flux's format, plain YAML files,
// a tar.gz) to the sandbox registry behind Artifact Registry's token flow; the function's
// half is the real function fetching them with its ADC token, pinning by digest, applying
// as an ApplySet, pruning, rolling back whole. Every test has its own namespace and its own
// repositories (HOST/<ns>/web and HOST/<ns>/web-deploy), so tags never collide.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import type { SandboxInfo } from '../sandbox/index.ts';
import { configYaml, fixture, gkeCluster } from './support/config.ts';
import { ensureBundle } from './support/bundle.ts';
import { resultTopic } from './support/result-topic.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { deleteManifest, pushImage, pushManifests, registryRepo, retag, trustRegistryCa, type ManifestsFormat } from './support/oci.ts';
import { spawnFunction } from './support/process.ts';
import { exists, kubectl, kubectlJson, namespace, stats, useSandboxEnv } from './support/sandbox.ts';

const PART_OF = 'applyset.kubernetes.io/part-of';
const MANIFESTS_STAMP = 'gke-deployer/manifests';

interface Obj {
  kind: string;
  metadata: { name: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: { template?: { spec: { containers: { name: string; image: string; env?: { name: string; value: string }[] }[] } } };
}

/** The ApplySet id of target `target` in `ns`, computed from KEP-3659 as the contract states it (not from src/). */
function applysetId(target: string, ns: string): string {
  const hash = createHash('sha256').update(`gke-deployer-${target}.${ns}.ConfigMap.`).digest('base64url');
  return `applyset-${hash}-v1`;
}

/** One release's manifests: a Deployment (env), a ConfigMap (data), and Services by name. */
interface ReleaseSpec {
  env?: Record<string, string>;
  config?: Record<string, string>;
  services?: string[];
}

function releaseFiles(spec: ReleaseSpec): Record<string, string> {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'web', image: 'placeholder', env: Object.entries(spec.env ?? {}).map(([name, value]) => ({ name, value })) }] },
      },
    },
  };
  const config = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-config' }, data: spec.config ?? { greeting: 'hello' } };
  const services = (spec.services ?? ['web']).map((name) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
  }));
  return {
    'deploy/deployment.yaml': stringify(deployment),
    'deploy/config.yaml': stringify(config),
    // Several documents in one file, as people write them.
    'deploy/services.yaml': services.map((s) => stringify(s)).join('---\n'),
  };
}

/** The same files without folders (oras pushes one layer per file, named by its file name). */
const flat = (files: Record<string, string>) => Object.fromEntries(Object.entries(files).map(([k, v]) => [k.replace(/^.*\//, ''), v]));

interface Repos {
  /** Repository paths in the registry (for oci.ts). */
  web: string;
  deploy: string;
  /** The same as HOST/PATH (for configs and requests). */
  webRepo: string;
  deployRepo: string;
}

async function repos(ns: string): Promise<Repos> {
  const web = `${ns}/web`;
  const deploy = `${ns}/web-deploy`;
  return { web, deploy, webRepo: await registryRepo(web), deployRepo: await registryRepo(deploy) };
}

/** Pushes image `tag` and manifests release `tag`; their digests. */
async function publish(r: Repos, tag: string, spec: ReleaseSpec, format: ManifestsFormat = 'flux'): Promise<{ image: string; manifests: string }> {
  const files = releaseFiles(spec);
  const [image, manifests] = await Promise.all([pushImage(r.web, tag), pushManifests(r.deploy, tag, format === 'oras-yaml' ? flat(files) : files, format)]);
  return { image, manifests };
}

function ociTarget(ns: string, r: Repos, extra: Record<string, unknown> = {}) {
  return { cluster: 'sandbox', namespace: ns, images: [r.webRepo], manifests: { oci: r.deployRepo, tag: '${tag}' }, container: 'web', rollout: { timeout: '60s' }, ...extra };
}

async function get(ns: string, kind: string, name: string): Promise<Obj> {
  return kubectlJson<Obj>(['-n', ns, 'get', kind, name]);
}

async function liveImage(ns: string): Promise<string | undefined> {
  return (await get(ns, 'deployment', 'web')).spec?.template?.spec.containers[0]?.image;
}

/** `Kind/name` of the ApplySet's members, as kubectl lists them by the part-of label. */
async function members(ns: string, id: string): Promise<string[]> {
  const list = await kubectlJson<{ items: Obj[] }>(['-n', ns, 'get', 'deployments,services,configmaps', '-l', `${PART_OF}=${id}`]);
  return list.items.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

const errorCode = (body: Record<string, unknown>) => (body.error as { code?: string } | undefined)?.code;

interface Release {
  image: string;
  pinned: boolean;
  notPinned?: string;
  manifests?: { artifact: string; digest: string };
}

const releaseOf = (body: Record<string, unknown>) => body.release as Release | undefined;

/** Nothing of the target was written in `ns`: no workload, no Service, no ApplySet parent. */
async function assertNothingWritten(ns: string, target = 'web'): Promise<void> {
  assert.equal(await exists('deployment', 'web', ns), false, 'no Deployment');
  assert.equal(await exists('configmap', 'web-config', ns), false, 'no ConfigMap of the release');
  assert.equal(await exists('configmap', `gke-deployer-${target}`, ns), false, 'no ApplySet parent');
}

/** A Pub/Sub push envelope as the emulator sends it. */
function envelope(data: object, messageId = String(BigInt(`0x${randomBytes(6).toString('hex')}`))) {
  return {
    message: { data: Buffer.from(JSON.stringify(data)).toString('base64'), messageId, publishTime: new Date().toISOString() },
    subscription: 'projects/sandbox-project/subscriptions/gke-deployer-test',
  };
}

/** An Artifact Registry notification (gcr topic) for `repo:tag` pushed as `digest`. */
const arInsert = (repo: string, tag: string, digest: string) => envelope({ action: 'INSERT', digest: `${repo}@${digest}`, tag: `${repo}:${tag}` });

/** The single result of a Pub/Sub answer (Pub/Sub answers always carry `results`). */
function pubsubResult(body: Record<string, unknown>): Record<string, unknown> {
  const results = body.results as Record<string, unknown>[] | undefined;
  assert.equal(results?.length, 1, JSON.stringify(body));
  return results[0]!;
}

let info: SandboxInfo;

before(async () => {
  info = await useSandboxEnv();
  await trustRegistryCa();
});

describe('a release from an OCI artifact', () => {
  test('a new artifact adds a ConfigMap key, a Service and an env var, with no change to the deployer: pinned by digest, stamped, an ApplySet', async (t) => {
    const ns = await namespace('rel-a');
    const r = await repos(ns);
    const results = await resultTopic(t, 'release-results');
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) }, report: { topic: results.topic } }));
    try {
      const v1 = await publish(r, 'v1', { env: { LOG: 'info' }, config: { greeting: 'hello' }, services: ['web'] }, 'flux');
      const before1 = (await stats()).registry!;
      const first = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.status, 'ready', JSON.stringify(first.body));
      assert.equal(first.body.image, `${r.webRepo}:v1@${v1.image}`);
      // A cold release is fetched: the counters see it (and so can see a warm one fetch nothing).
      const after1 = (await stats()).registry!;
      assert.ok(after1.manifestGets > before1.manifestGets && after1.blobGets > before1.blobGets, `cold fetch counted: ${JSON.stringify({ before1, after1 })}`);

      // CI pushes a new release (plain YAML files this time); the deployer is the same process with the same config.
      const v2 = await publish(r, 'v2', { env: { LOG: 'info', FEATURE: 'on' }, config: { greeting: 'hello', feature: 'on' }, services: ['web', 'web-admin'] }, 'oras-yaml');
      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      const pinned = `${r.webRepo}:v2@${v2.image}`;
      assert.equal(res.body.image, pinned);
      assert.deepEqual(releaseOf(res.body), { image: `${r.webRepo}:v2`, pinned: true, manifests: { artifact: `${r.deployRepo}:v2@${v2.manifests}`, digest: v2.manifests } });

      // What runs: the new key, the new Service, the new env var, the pinned image.
      assert.deepEqual((await get(ns, 'configmap', 'web-config')).data, { greeting: 'hello', feature: 'on' });
      assert.equal(await exists('service', 'web-admin', ns), true);
      const container = (await get(ns, 'deployment', 'web')).spec?.template?.spec.containers[0];
      assert.equal(container?.image, pinned);
      assert.deepEqual(container?.env, [{ name: 'LOG', value: 'info' }, { name: 'FEATURE', value: 'on' }]);

      // Every object carries the artifact's digest and the ApplySet label; kubectl lists the set by it.
      const id = applysetId('web', ns);
      const stamp = `${r.deployRepo}@${v2.manifests}`;
      for (const [kind, name] of [['deployment', 'web'], ['configmap', 'web-config'], ['service', 'web'], ['service', 'web-admin']] as const) {
        const o = await get(ns, kind, name);
        assert.equal(o.metadata.annotations?.[MANIFESTS_STAMP], stamp, `${kind}/${name} stamp`);
        assert.equal(o.metadata.labels?.[PART_OF], id, `${kind}/${name} part-of`);
      }
      assert.deepEqual(await members(ns, id), ['ConfigMap/web-config', 'Deployment/web', 'Service/web', 'Service/web-admin']);
      const parent = await get(ns, 'configmap', 'gke-deployer-web');
      assert.equal(parent.metadata.labels?.['applyset.kubernetes.io/id'], id);
      assert.equal(parent.metadata.annotations?.['applyset.kubernetes.io/tooling'], 'gke-deployer/v1');
      assert.equal(parent.metadata.annotations?.['applyset.kubernetes.io/contains-group-kinds'], 'ConfigMap,Deployment.apps,Service');
      // The digest is in the log line of the deploy too.
      const line = fn.logs.find((l) => l.requestId === res.body.requestId && l.message.startsWith('deployed'));
      assert.ok(line, 'a "deployed" log line');
      assert.match(JSON.stringify(line), new RegExp(v2.manifests));
      // And in the result message (report.topic): its body is the answer, release included.
      const message = (await results.count(2)).find((m) => m.attributes.requestId === res.body.requestId);
      assert.ok(message, 'a result message for the deploy');
      assert.deepEqual((JSON.parse(message.data.toString('utf8')) as Record<string, unknown>).release, res.body.release);
    } finally {
      await fn.close();
    }
  });

  test('a release that removes an object prunes it once Ready; a dry run lists it and deletes nothing', async () => {
    const ns = await namespace('rel-b');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      await publish(r, 'v1', { services: ['web', 'web-admin'] }, 'oras-tar');
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` })).body.status, 'ready');
      await publish(r, 'v2', { services: ['web'] }, 'oras-tar');

      const dry = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2`, dryRun: true });
      assert.equal(dry.status, 200, JSON.stringify(dry.body));
      assert.equal(dry.body.status, 'dry-run');
      assert.deepEqual(dry.body.pruned, ['Service/web-admin']);
      assert.equal(await exists('service', 'web-admin', ns), true, 'a dry run deletes nothing');

      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready');
      assert.deepEqual(res.body.pruned, ['Service/web-admin']);
      assert.equal(await exists('service', 'web-admin', ns), false);
      assert.deepEqual(await members(ns, applysetId('web', ns)), ['ConfigMap/web-config', 'Deployment/web', 'Service/web']);
    } finally {
      await fn.close();
    }
  });

  test('a failing release that adds and removes objects is rolled back whole: the removed object stays, the added one goes, the previous image runs; its redelivery deploys nothing', async () => {
    const ns = await namespace('rel-c');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      const v1 = await publish(r, 'v1', { config: { greeting: 'hello' }, services: ['web', 'web-admin'] });
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` })).body.status, 'ready');
      // The failing release: an image whose Pods never pull (the kwok convention), manifests that drop web-admin and add web-extra.
      await publish(r, 'fail-pull-2', { config: { greeting: 'changed' }, services: ['web', 'web-extra'] });
      // Its uid tells a deletion and re-creation (a prune before the rollout failed, undone by the rollback) from an object left alone.
      const adminUid = (await kubectlJson<{ metadata: { uid: string } }>(['-n', ns, 'get', 'service', 'web-admin'])).metadata.uid;
      const event = { target: 'web', image: `${r.webRepo}:fail-pull-2`, eventId: `bad-${ns}` };
      const res = await fn.post('/deploy', event);
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
      assert.equal(res.body.restoredManifests, `${r.deployRepo}@${v1.manifests}`);
      assert.equal(res.body.restoredImage, `${r.webRepo}:v1@${v1.image}`);
      assert.equal(res.body.pruned, undefined, 'nothing is pruned on failure');

      assert.equal((await kubectlJson<{ metadata: { uid: string } }>(['-n', ns, 'get', 'service', 'web-admin'])).metadata.uid, adminUid, 'the object the failed release removed is still there, never deleted');
      assert.equal(await exists('service', 'web-extra', ns), false, 'the object the failed release added is deleted');
      assert.deepEqual((await get(ns, 'configmap', 'web-config')).data, { greeting: 'hello' }, 'the previous release is re-applied whole');
      assert.equal(await liveImage(ns), `${r.webRepo}:v1@${v1.image}`);
      assert.equal((await get(ns, 'deployment', 'web')).metadata.annotations?.[MANIFESTS_STAMP], `${r.deployRepo}@${v1.manifests}`);

      const rv = (await get(ns, 'deployment', 'web')).metadata.resourceVersion;
      const again = await fn.post('/deploy', event);
      assert.equal(again.body.status, 'rolled-back', JSON.stringify(again.body));
      assert.equal((await get(ns, 'deployment', 'web')).metadata.resourceVersion, rv, 'the redelivery wrote nothing');
      assert.equal(await exists('service', 'web-extra', ns), false);
    } finally {
      await fn.close();
    }
  });

  test('tags pushed again to other digests change nothing until a new deploy; a reconcile re-applies the recorded digests', async () => {
    const ns = await namespace('rel-d');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ auth: { direct: 'none', scheduler: 'none' }, clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      const v1 = await publish(r, 'v1', { config: { greeting: 'hello' } });
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` })).body.status, 'ready');
      // CI pushes v1 again: the image and the manifests tags now name other digests.
      const moved = await publish(r, 'v1', { config: { greeting: 'moved' } });
      assert.notEqual(moved.image, v1.image);
      assert.notEqual(moved.manifests, v1.manifests);
      assert.equal(await liveImage(ns), `${r.webRepo}:v1@${v1.image}`);

      // Someone edits the ConfigMap by hand; a reconcile puts back the recorded release, not the moved tag.
      await kubectl(['-n', ns, 'patch', 'configmap', 'web-config', '--type=merge', '-p', '{"data":{"greeting":"by hand"}}']);
      const rec = await fn.post('/scheduler', { target: 'web' });
      assert.equal(rec.status, 200, JSON.stringify(rec.body));
      assert.equal(rec.body.reconciled, true);
      assert.equal(rec.body.image, `${r.webRepo}:v1@${v1.image}`);
      assert.equal(releaseOf(rec.body)?.manifests?.digest, v1.manifests);
      assert.deepEqual((await get(ns, 'configmap', 'web-config')).data, { greeting: 'hello' });
      assert.equal(await liveImage(ns), `${r.webRepo}:v1@${v1.image}`);

      // A new deploy of the tag takes what it names now.
      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` });
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      assert.equal(await liveImage(ns), `${r.webRepo}:v1@${moved.image}`);
      assert.deepEqual((await get(ns, 'configmap', 'web-config')).data, { greeting: 'moved' });
    } finally {
      await fn.close();
    }
  });

  test('a warm deploy of an already fetched release (a new event, same tags) fetches nothing from the registry', async () => {
    const ns = await namespace('rel-f');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      await publish(r, 'v1', {});
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1`, eventId: 'first' })).body.status, 'ready');
      const before = (await stats()).registry!;
      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1`, eventId: 'second' });
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      const after = (await stats()).registry!;
      assert.equal(after.manifestGets - before.manifestGets, 0, 'manifest GETs');
      assert.equal(after.blobGets - before.blobGets, 0, 'blob GETs');
      // The tags were resolved again (a tag may have moved): the window did see this deploy's registry traffic.
      assert.ok(after.manifestHeads > before.manifestHeads, `manifest HEADs ${before.manifestHeads} → ${after.manifestHeads}`);
    } finally {
      await fn.close();
    }
  });

  test('a digest-only image is refused with MANIFESTS_TAG_UNKNOWN (the tag template has no value), nothing written', async () => {
    const ns = await namespace('rel-h');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      const v1 = await publish(r, 'v1', {});
      // `latest` exists too: the deployer must not fall back to it.
      await retag(r.deploy, 'v1', 'latest');
      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}@${v1.image}` });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(errorCode(res.body), 'MANIFESTS_TAG_UNKNOWN');
      await assertNothingWritten(ns);
    } finally {
      await fn.close();
    }
  });
});

describe('a first release that fails, a previous artifact gone, prune off', () => {
  test('a first release that fails: rolled back (422), every object it created deleted, the parent records the event rolled back and no image; its redelivery writes nothing; a reconcile answers NOT_DEPLOYED', async () => {
    const ns = await namespace('rel-l');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ auth: { direct: 'none', scheduler: 'none' }, clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      // No release before it: the namespace is fresh, and the image's Pods never pull (the kwok convention).
      await publish(r, 'fail-pull-1', { config: { greeting: 'hello' }, services: ['web'] });
      const event = { target: 'web', image: `${r.webRepo}:fail-pull-1`, eventId: `first-${ns}` };
      const res = await fn.post('/deploy', event);
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
      assert.equal(res.body.restoredManifests, undefined, 'no release before it to restore');
      assert.deepEqual([...(res.body.deleted as string[])].sort(), ['ConfigMap/web-config', 'Deployment/web', 'Service/web']);
      assert.equal(await exists('deployment', 'web', ns), false, 'the Deployment it created is deleted');
      assert.equal(await exists('service', 'web', ns), false, 'the Service it created is deleted');
      assert.equal(await exists('configmap', 'web-config', ns), false, 'the ConfigMap it created is deleted');

      // The parent stays: it records the event, handled and rolled back, and no release.
      const parent = await get(ns, 'configmap', 'gke-deployer-web');
      const a = parent.metadata.annotations ?? {};
      assert.equal(a['gke-deployer/event-id'], event.eventId);
      assert.equal(a['gke-deployer/rolled-back'], event.eventId);
      assert.equal('gke-deployer/image' in a, false, `no image recorded: ${JSON.stringify(a)}`);

      const again = await fn.post('/deploy', event);
      assert.equal(again.status, 422, JSON.stringify(again.body));
      assert.equal(again.body.status, 'rolled-back', JSON.stringify(again.body));
      assert.equal((await get(ns, 'configmap', 'gke-deployer-web')).metadata.resourceVersion, parent.metadata.resourceVersion, 'the redelivery wrote nothing');
      assert.equal(await exists('deployment', 'web', ns), false);
      assert.equal(await exists('service', 'web', ns), false);
      assert.equal(await exists('configmap', 'web-config', ns), false);

      // Nothing was released, so there is nothing to reconcile.
      const rec = await fn.post('/scheduler', { target: 'web' });
      assert.equal(rec.status, 404, JSON.stringify(rec.body));
      assert.equal(errorCode(rec.body), 'NOT_DEPLOYED');
    } finally {
      await fn.close();
    }
  });

  test("the previous release's artifact deleted from the registry: a failing release still deploys, and falls back to the pod-template restore", async () => {
    const ns = await namespace('rel-m');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      const v1 = await publish(r, 'v1', {});
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` })).body.status, 'ready');
      await deleteManifest(r.deploy, v1.manifests);
      const bad = await publish(r, 'fail-pull-2', {});
      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:fail-pull-2` });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
      // It went ahead: the failing release was applied, not refused for the previous artifact.
      assert.equal(res.body.failedImage, `${r.webRepo}:fail-pull-2@${bad.image}`);
      assert.equal(releaseOf(res.body)?.manifests?.digest, bad.manifests);
      // The pod-template restore: the previous image runs again; no artifact was restored.
      assert.equal(res.body.restoredManifests, undefined, JSON.stringify(res.body));
      assert.equal(res.body.restoredImage, `${r.webRepo}:v1@${v1.image}`);
      assert.equal(await liveImage(ns), `${r.webRepo}:v1@${v1.image}`);
    } finally {
      await fn.close();
    }
  });

  /** Release v1, its artifact deleted, then a failing release rolled back by the pod-template restore (the test above). */
  async function rolledBackByPodTemplate(prefix: string): Promise<{ fn: RunningFunction; ns: string; event: Record<string, string>; running: string; failed: string }> {
    const ns = await namespace(prefix);
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ auth: { direct: 'none', scheduler: 'none' }, clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    const v1 = await publish(r, 'v1', {});
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` })).body.status, 'ready');
    await deleteManifest(r.deploy, v1.manifests);
    await publish(r, 'fail-pull-3', {});
    const event = { target: 'web', image: `${r.webRepo}:fail-pull-3`, eventId: `bad-${ns}` };
    const res = await fn.post('/deploy', event);
    assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
    const running = `${r.webRepo}:v1@${v1.image}`;
    assert.equal(await liveImage(ns), running);
    return { fn, ns, event, running, failed: String(res.body.failedImage) };
  }

  test('after that pod-template restore, a redelivery of the failed event answers rolled-back again, not duplicate', async () => {
    const { fn, ns, event, running } = await rolledBackByPodTemplate('rel-o');
    try {
      // README: "a further redelivery answers rolled-back again … an event that was rolled back is never reported as fine".
      const again = await fn.post('/deploy', event);
      assert.equal(again.body.status, 'rolled-back', JSON.stringify(again.body));
      assert.equal(await liveImage(ns), running);
    } finally {
      await fn.close();
    }
  });

  test('after that pod-template restore, a reconcile does not apply the failed image again', async () => {
    const { fn, ns, running, failed } = await rolledBackByPodTemplate('rel-p');
    try {
      const rec = await fn.post('/scheduler', { target: 'web' });
      // The parent records the release before the failed one again, whose artifact is gone: the
      // reconcile says so and writes nothing, never the release that was rolled back.
      assert.equal(rec.status, 404, `reconcile answered ${rec.status} ${JSON.stringify(rec.body)} (the failed image: ${failed})`);
      assert.equal(errorCode(rec.body), 'MANIFESTS_NOT_FOUND', JSON.stringify(rec.body));
      assert.equal(await liveImage(ns), running);
    } finally {
      await fn.close();
    }
  });

  test('prune: false on an OCI target: a release that removes a Service leaves it in place', async () => {
    const ns = await namespace('rel-n');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r, { prune: false }) } }));
    try {
      await publish(r, 'v1', { services: ['web', 'web-admin'] });
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` })).body.status, 'ready');
      await publish(r, 'v2', { services: ['web'] });
      const dry = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2`, dryRun: true });
      assert.equal(dry.body.status, 'dry-run', JSON.stringify(dry.body));
      assert.equal(dry.body.pruned, undefined, 'a dry run lists nothing to prune');
      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      assert.equal(res.body.pruned, undefined, JSON.stringify(res.body));
      assert.equal(await exists('service', 'web-admin', ns), true, 'the Service the release removed stays');
    } finally {
      await fn.close();
    }
  });
});

describe('a release missing its image or its manifests', () => {
  test('/deploy: a missing image → 404 IMAGE_NOT_FOUND, a missing artifact → 404 MANIFESTS_NOT_FOUND, nothing written', async () => {
    const ns = await namespace('rel-e');
    const r = await repos(ns);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    try {
      await pushManifests(r.deploy, 'v1', releaseFiles({}));
      const noImage = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` });
      assert.equal(noImage.status, 404, JSON.stringify(noImage.body));
      assert.equal(errorCode(noImage.body), 'IMAGE_NOT_FOUND');
      await assertNothingWritten(ns);

      await pushImage(r.web, 'v2');
      const noManifests = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2` });
      assert.equal(noManifests.status, 404, JSON.stringify(noManifests.body));
      assert.equal(errorCode(noManifests.body), 'MANIFESTS_NOT_FOUND');
      await assertNothingWritten(ns);
    } finally {
      await fn.close();
    }
  });

  test('through Pub/Sub: 503 (redelivered) while the other half is missing, nothing written; the same message deploys once it is pushed', async () => {
    const nsAr = await namespace('rel-e-ar');
    const nsIntent = await namespace('rel-e-in');
    const [ar, intent] = [await repos(nsAr), await repos(nsIntent)];
    const fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none' },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: ociTarget(nsAr, ar), intent: ociTarget(nsIntent, intent, { accept: ['intent'] }) },
        rules: [{ source: 'artifact-registry', repository: ar.webRepo, tags: 'v*', targets: ['web'] }],
      }),
    );
    try {
      // Artifact Registry notifies the image push before CI has pushed the manifests.
      const image = await pushImage(ar.web, 'v2');
      const message = arInsert(ar.webRepo, 'v2', image);
      const early = await fn.post('/pubsub', message);
      assert.equal(early.status, 503, JSON.stringify(early.body));
      assert.equal(errorCode(pubsubResult(early.body)), 'MANIFESTS_NOT_FOUND');
      await assertNothingWritten(nsAr);
      const manifests = await pushManifests(ar.deploy, 'v2', releaseFiles({}));
      const redelivered = await fn.post('/pubsub', message);
      assert.equal(redelivered.status, 200, JSON.stringify(redelivered.body));
      assert.equal(pubsubResult(redelivered.body).status, 'ready');
      assert.equal(await liveImage(nsAr), `${ar.webRepo}:v2@${image}`);
      assert.equal(releaseOf(pubsubResult(redelivered.body))?.manifests?.digest, manifests);

      // A deploy intent naming an image not pushed yet.
      const ask = envelope({ target: 'intent', image: `${intent.webRepo}:v3` });
      await pushManifests(intent.deploy, 'v3', releaseFiles({}));
      const before = await fn.post('/pubsub', ask);
      assert.equal(before.status, 503, JSON.stringify(before.body));
      assert.equal(errorCode(pubsubResult(before.body)), 'IMAGE_NOT_FOUND');
      await assertNothingWritten(nsIntent, 'intent');
      const pushed = await pushImage(intent.web, 'v3');
      const again = await fn.post('/pubsub', ask);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(pubsubResult(again.body).status, 'ready');
      assert.equal(await liveImage(nsIntent), `${intent.webRepo}:v3@${pushed}`);
    } finally {
      await fn.close();
    }
  });
});

describe('an old event whose image was since deleted', () => {
  let fn: RunningFunction;
  let ns: string;
  let r: Repos;
  let v1: { image: string; manifests: string };
  let v2: { image: string; manifests: string };
  const t1 = new Date(Date.now() - 120_000).toISOString();
  const t2 = new Date(Date.now() - 60_000).toISOString();

  before(async () => {
    ns = await namespace('rel-g');
    r = await repos(ns);
    fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }));
    v1 = await publish(r, 'v1', {});
    v2 = await publish(r, 'v2', {});
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1`, eventId: 'event-1', eventTime: t1 })).body.status, 'ready');
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2`, eventId: 'event-2', eventTime: t2 })).body.status, 'ready');
  });
  after(() => fn.close());

  test('an event older than the applied one, its image deleted: stale (409), not IMAGE_NOT_FOUND, nothing written', async () => {
    await deleteManifest(r.web, v1.image);
    const rv = (await get(ns, 'deployment', 'web')).metadata.resourceVersion;
    const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1`, eventId: 'event-1', eventTime: t1 });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.status, 'stale', JSON.stringify(res.body));
    assert.equal((await get(ns, 'deployment', 'web')).metadata.resourceVersion, rv);
    assert.equal(await liveImage(ns), `${r.webRepo}:v2@${v2.image}`);
  });

  test('the applied event again, its image deleted: duplicate (200), not IMAGE_NOT_FOUND, nothing written', async () => {
    await deleteManifest(r.web, v2.image);
    const rv = (await get(ns, 'deployment', 'web')).metadata.resourceVersion;
    const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v2`, eventId: 'event-2', eventTime: t2 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'duplicate', JSON.stringify(res.body));
    assert.equal((await get(ns, 'deployment', 'web')).metadata.resourceVersion, rv);
  });
});

describe('a manifests-only release', () => {
  test('an Artifact Registry notification for the manifests repository deploys the new manifests with the running image where a rule names that repository, and nothing where none does', async () => {
    const withRule = await namespace('rel-i');
    const without = await namespace('rel-i-none');
    const [r, other] = [await repos(withRule), await repos(without)];
    const fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none' },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: ociTarget(withRule, r), other: ociTarget(without, other) },
        rules: [
          { source: 'artifact-registry', repository: r.deployRepo, targets: ['web'] },
          // The other target's rule is on its image only.
          { source: 'artifact-registry', repository: other.webRepo, tags: 'v*', targets: ['other'] },
        ],
      }),
    );
    try {
      const v1 = await publish(r, 'v1', { config: { greeting: 'hello' } });
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` })).body.status, 'ready');
      // Only the manifests change: CI pushes them under a tag of their own.
      const config2 = await pushManifests(r.deploy, 'config-2', releaseFiles({ config: { greeting: 'hello', extra: 'yes' } }));
      const res = await fn.post('/pubsub', arInsert(r.deployRepo, 'config-2', config2));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const result = pubsubResult(res.body);
      assert.equal(result.status, 'ready', JSON.stringify(result));
      assert.equal(result.image, `${r.webRepo}:v1@${v1.image}`, 'the image the target runs');
      assert.equal(releaseOf(result)?.manifests?.digest, config2);
      assert.deepEqual((await get(withRule, 'configmap', 'web-config')).data, { greeting: 'hello', extra: 'yes' });
      assert.equal(await liveImage(withRule), `${r.webRepo}:v1@${v1.image}`);

      const o1 = await publish(other, 'v1', { config: { greeting: 'hello' } });
      assert.equal((await fn.post('/deploy', { target: 'other', image: `${other.webRepo}:v1` })).body.status, 'ready');
      const parentBefore = await get(without, 'configmap', 'gke-deployer-other');
      // CI pushes the next release's manifests under the image's tag pattern (v*): their notification is not the image's, and deploys nothing.
      const otherConfig = await pushManifests(other.deploy, 'v2', releaseFiles({ config: { greeting: 'changed' } }));
      const ignored = await fn.post('/pubsub', arInsert(other.deployRepo, 'v2', otherConfig));
      assert.equal(ignored.status, 200, JSON.stringify(ignored.body));
      assert.equal(ignored.body.status, 'ignored', JSON.stringify(ignored.body));
      assert.equal((await get(without, 'configmap', 'gke-deployer-other')).metadata.resourceVersion, parentBefore.metadata.resourceVersion);
      assert.deepEqual((await get(without, 'configmap', 'web-config')).data, { greeting: 'hello' });
      assert.equal(await liveImage(without), `${other.webRepo}:v1@${o1.image}`);
    } finally {
      await fn.close();
    }
  });
});

describe('images pinned by digest on a file target', () => {
  let fn: RunningFunction;
  const ns: Record<'auto' | 'off' | 'outside' | 'required', string> = { auto: '', off: '', outside: '', required: '' };
  let webRepo: string;
  let digest: string;
  const NGINX = 'docker.io/library/nginx';

  before(async () => {
    for (const k of Object.keys(ns) as (keyof typeof ns)[]) ns[k] = await namespace(`rel-j-${k}`);
    const r = await repos(ns.auto);
    webRepo = r.webRepo;
    digest = await pushImage(r.web, 'v1');
    const file = (n: string, extra: Record<string, unknown> = {}) => ({ cluster: 'sandbox', namespace: n, manifests: ['web.yaml'], container: 'web', images: [webRepo], ...extra });
    fn = await startFunction(
      configYaml({
        clusters: { sandbox: gkeCluster(info) },
        targets: {
          auto: file(ns.auto),
          off: file(ns.off, { pinDigests: false }),
          outside: file(ns.outside, { images: [NGINX] }),
          required: file(ns.required, { images: [NGINX], pinDigests: true }),
        },
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
  });
  after(() => fn.close());

  test('an image in the sandbox registry is pinned by default', async () => {
    const res = await fn.post('/deploy', { target: 'auto', image: `${webRepo}:v1` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.image, `${webRepo}:v1@${digest}`);
    assert.deepEqual(releaseOf(res.body), { image: `${webRepo}:v1`, pinned: true });
    assert.equal(await liveImage(ns.auto), `${webRepo}:v1@${digest}`);
  });

  test('pinDigests: false applies the tag', async () => {
    const res = await fn.post('/deploy', { target: 'off', image: `${webRepo}:v1` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.image, `${webRepo}:v1`);
    assert.equal(releaseOf(res.body)?.pinned, false);
    assert.equal(await liveImage(ns.off), `${webRepo}:v1`);
  });

  test('an image in a registry the function does not reach deploys by tag, not pinned and saying why (no network here: a call would fail the deploy)', async () => {
    const res = await fn.post('/deploy', { target: 'outside', image: `${NGINX}:1` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.equal(res.body.image, `${NGINX}:1`);
    const release = releaseOf(res.body);
    assert.equal(release?.pinned, false);
    assert.match(String(release?.notPinned), /docker\.io/);
    assert.equal(await liveImage(ns.outside), `${NGINX}:1`);
  });

  test('pinDigests: true with such an image is refused with IMAGE_NOT_PINNED, nothing written', async () => {
    const res = await fn.post('/deploy', { target: 'required', image: `${NGINX}:1` });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(errorCode(res.body), 'IMAGE_NOT_PINNED');
    assert.equal(await exists('deployment', 'web', ns.required), false);
  });
});

describe('the production bundle', () => {
  test('deploys an OCI release: the registry client fetches it with the ADC token, pinned and stamped', async () => {
    const entry = await ensureBundle();
    const ns = await namespace('rel-k');
    const r = await repos(ns);
    const v1 = await publish(r, 'v1', { config: { greeting: 'bundled' } });
    const fn = await spawnFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: ociTarget(ns, r) } }), {}, info.env, entry);
    try {
      const res = await fn.post('/deploy', { target: 'web', image: `${r.webRepo}:v1` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      assert.equal(res.body.image, `${r.webRepo}:v1@${v1.image}`);
      assert.equal(releaseOf(res.body)?.manifests?.digest, v1.manifests);
      assert.deepEqual((await get(ns, 'configmap', 'web-config')).data, { greeting: 'bundled' });
      assert.equal((await get(ns, 'deployment', 'web')).metadata.annotations?.[MANIFESTS_STAMP], `${r.deployRepo}@${v1.manifests}`);
    } finally {
      await fn.close();
    }
  });
});
