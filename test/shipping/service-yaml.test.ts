// service.yaml: a valid Cloud Run service (Knative schema with Cloud Run's fields and
// limits), wired to what setup.sh creates, sized by the measured memory, with a timeout
// that covers the longest rollout the examples configure.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';
import { cloudRunService, type CloudRunService } from './support/knative.ts';
import { renderService, secretsState } from './support/render.ts';

const root = path.resolve(import.meta.dirname, '../..');
const SERVICE_FILE = path.join(root, 'service.yaml');
const text = readFileSync(SERVICE_FILE, 'utf8');
const setupScript = readFileSync(path.join(root, 'deploy/gcloud/setup.sh'), 'utf8');

/** A shell variable's value as setup.sh sets it (`NAME=value`, `NAME=(a b)`). */
function setupValue(name: string): string {
  const m = new RegExp(`^${name}=(\\(([^)]*)\\)|\\S+)`, 'm').exec(setupScript);
  assert.ok(m, `setup.sh sets ${name}`);
  return (m[2] ?? m[1]!).replace(/\$PROJECT/g, 'my-proj');
}
const WEBHOOK_SECRETS = setupValue('WEBHOOK_SECRETS').split(/\s+/);
const REPORT_SECRETS = setupValue('REPORT_SECRETS').split(/\s+/);
const PLACES = { IMAGE: 'europe-west1-docker.pkg.dev/my-proj/gke-deployer/gke-deployer:b1', PROJECT: 'my-proj', REGION: 'europe-west1', SERVICE: 'gke-deployer' };
/** As right after setup.sh: the webhook secrets have versions (3 and 1 here), the report secrets none. */
const FRESH = { [WEBHOOK_SECRETS[0]!]: 3, [WEBHOOK_SECRETS[1]!]: 1, ...Object.fromEntries(REPORT_SECRETS.map((r) => [r, 0])) };
const rendered = renderService(SERVICE_FILE, PLACES, secretsState(FRESH)).yaml;

function parseService(yaml: string): CloudRunService {
  const parsed = cloudRunService.safeParse(parse(yaml));
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues, null, 2));
  return parsed.data;
}
const service = () => parseService(rendered);
const container = (s = service()) => s.spec.template.spec.containers[0]!;
const env = (name: string, s = service()) => container(s).env?.find((e) => e.name === name);

describe('service.yaml', () => {
  test('is a Knative serving.knative.dev/v1 Service with the fields Cloud Run requires, all placeholders filled', () => {
    const s = service();
    assert.equal(s.metadata.name, 'gke-deployer');
    assert.equal(s.metadata.labels?.['cloud.googleapis.com/location'], 'europe-west1');
    assert.doesNotMatch(rendered, /__[A-Z_]+__/);
    // The schema is strict: a misspelt field is refused.
    const typo = parse(rendered) as { spec: { template: { spec: Record<string, unknown> } } };
    typo.spec.template.spec.containerConcurency = 4;
    assert.equal(cloudRunService.safeParse(typo).success, false);
  });

  test('runs as the dedicated runtime service account that setup.sh creates', () => {
    assert.equal(service().spec.template.spec.serviceAccountName, setupValue('RUNTIME_SA'));
  });

  test('is public at Cloud Run (invoker IAM check off) because every route authenticates in the app', () => {
    assert.equal(service().metadata.annotations?.['run.googleapis.com/invoker-iam-disabled'], 'true');
  });

  test('boosts CPU at start-up and probes /health (Cloud Run reserves some paths ending in "z")', () => {
    const s = service();
    assert.equal(s.spec.template.metadata?.annotations?.['run.googleapis.com/startup-cpu-boost'], 'true');
    const probe = container().startupProbe?.httpGet;
    assert.equal(probe?.path, '/health');
    assert.equal(probe.port, container().ports?.[0]?.containerPort);
    assert.doesNotMatch(probe.path, /z$/);
  });

  test('reads the config from a Secret Manager volume, at the path DEPLOYER_CONFIG names', () => {
    const s = service();
    const volume = s.spec.template.spec.volumes?.find((v) => v.secret.secretName === setupValue('CONFIG_SECRET'));
    assert.ok(volume, 'a volume of the config secret');
    const mount = container().volumeMounts?.find((m) => m.name === volume.name);
    assert.ok(mount);
    const item = volume.secret.items?.find((i) => i.key === 'latest');
    assert.ok(item, 'mounts the latest version');
    assert.equal(env('DEPLOYER_CONFIG')?.value, path.posix.join(mount.mountPath, item.path));
  });

  test('takes the webhook secrets from Secret Manager env refs, the secrets setup.sh creates, each pinned to its newest version', () => {
    const refs = ['GITHUB_WEBHOOK_SECRET', 'GITLAB_WEBHOOK_TOKEN'].map((n) => env(n)?.valueFrom?.secretKeyRef);
    assert.deepEqual(refs.map((r) => r?.name), WEBHOOK_SECRETS);
    // Google advises a fixed version for secrets in env vars (read when an instance starts).
    assert.deepEqual(refs.map((r) => r?.key), ['3', '1']);
    // In service.yaml each is the placeholder render-service.sh pins, __<VAR>_VERSION__ (never `latest`).
    const raw = parse(text) as { spec: { template: { spec: { containers: { env: { name: string; valueFrom?: { secretKeyRef: { key: string } } }[] }[] } } } };
    const secretEnv = raw.spec.template.spec.containers[0]!.env.filter((e) => e.valueFrom);
    assert.ok(secretEnv.length >= 2);
    for (const e of secretEnv) assert.equal(e.valueFrom?.secretKeyRef.key, `__${e.name}_VERSION__`, e.name);
    // No secret is written into the file.
    for (const e of container().env ?? []) if (/SECRET|TOKEN|WEBHOOK/.test(e.name)) assert.equal(e.value, undefined, e.name);
  });

  test('wires the report tokens and chat webhooks from the secrets setup.sh creates, each left out until its secret has a version', () => {
    const names = ['GITHUB_STATUS_TOKEN', 'GITLAB_STATUS_TOKEN', 'CHAT_WEBHOOK_URL', 'SLACK_WEBHOOK_URL'];
    // Fresh from setup.sh: no report secret has a version, so none is set (a report.* naming one fails start-up, naming it).
    for (const n of names) assert.equal(env(n), undefined, n);
    const withToken = parseService(renderService(SERVICE_FILE, PLACES, secretsState({ ...FRESH, [REPORT_SECRETS[0]!]: 2, [REPORT_SECRETS[2]!]: 1 })).yaml);
    assert.deepEqual(
      names.map((n) => env(n, withToken)?.valueFrom?.secretKeyRef ?? null),
      [{ name: REPORT_SECRETS[0], key: '2' }, null, { name: REPORT_SECRETS[2], key: '1' }, null],
    );
    // The other entries are untouched.
    assert.equal(env('GITHUB_WEBHOOK_SECRET', withToken)?.valueFrom?.secretKeyRef.key, '3');
  });

  test('a secret the build cannot list fails the render, naming it', () => {
    const { [WEBHOOK_SECRETS[1]!]: _missing, ...rest } = FRESH;
    assert.throws(() => renderService(SERVICE_FILE, PLACES, secretsState(rest)), new RegExp(`cannot list the versions of secret ${WEBHOOK_SECRETS[1]} \\(GITLAB_WEBHOOK_TOKEN\\)`));
  });

  test('Direct VPC egress (for internal endpoints) only with NETWORK: private ranges through the VPC', () => {
    const annotations = (s: CloudRunService) => s.spec.template.metadata?.annotations ?? {};
    const vpc = (s: CloudRunService) => [annotations(s)['run.googleapis.com/network-interfaces'], annotations(s)['run.googleapis.com/vpc-access-egress']];
    assert.deepEqual(vpc(service()), [undefined, undefined]);
    const withSubnet = parseService(renderService(SERVICE_FILE, { ...PLACES, NETWORK: 'prod-vpc', SUBNET: 'run-europe-west1' }, secretsState(FRESH)).yaml);
    assert.deepEqual(JSON.parse(vpc(withSubnet)[0] ?? ''), [{ network: 'prod-vpc', subnetwork: 'run-europe-west1' }]);
    assert.equal(vpc(withSubnet)[1], 'private-ranges-only');
    // Cloud Run's own default: a subnet named as the network.
    const networkOnly = parseService(renderService(SERVICE_FILE, { ...PLACES, NETWORK: 'prod-vpc' }, secretsState(FRESH)).yaml);
    assert.deepEqual(JSON.parse(vpc(networkOnly)[0] ?? ''), [{ network: 'prod-vpc', subnetwork: 'prod-vpc' }]);
  });

  test('memory fits the measured worst case at its concurrency, and the heap cap leaves room outside the heap', () => {
    const spec = service().spec.template.spec;
    const [, amount, unit] = /^(\d+)(Mi|Gi)$/.exec(container().resources!.limits.memory)!;
    const memoryMiB = Number(amount) * (unit === 'Gi' ? 1024 : 1);
    // Measured by `npm run bench:memory` (see the comment in service.yaml), heap capped at
    // 256 MiB: RSS after 20 000 deploys, and what each request in flight added to it at the
    // peak (8 deploys + 8 clients sending 31 MiB bodies: (222 − 170) / 16, rounded up; bodies
    // over 1 MiB are refused before they are read).
    const plateauMiB = 170;
    const perRequestMiB = 4;
    // 80%: Cloud Run's in-memory filesystem counts against the same limit, and spikes need room.
    assert.ok(plateauMiB + spec.containerConcurrency * perRequestMiB <= memoryMiB * 0.8, `${spec.containerConcurrency} × ${perRequestMiB} + ${plateauMiB} MiB in ${memoryMiB} MiB`);
    const heap = Number(/--max-old-space-size=(\d+)/.exec(env('NODE_OPTIONS')?.value ?? '')?.[1]);
    assert.ok(heap > 0 && heap <= memoryMiB / 2, `heap cap ${heap} MiB`);
  });

  test('its timeout covers the longest rollout the examples configure, and equals the Pub/Sub ack deadline', () => {
    const timeout = service().spec.template.spec.timeoutSeconds;
    const config = loadConfigFile(path.join(root, 'examples/deployer.yaml'));
    // Each target's rollout timeout once the schema filled in its default; the schema turns
    // `rollout.timeout` ("300s", "5m", or seconds) into milliseconds. (None before the
    // rollout stage exists.)
    const rolloutTimeouts = [...config.targets.values()].flatMap((t) => {
      const ms = (t as { rollout?: { timeout?: unknown } }).rollout?.timeout;
      return typeof ms === 'number' ? [ms / 1000] : [];
    });
    const longest = Math.max(0, ...rolloutTimeouts);
    assert.ok(timeout >= longest, `timeoutSeconds ${timeout} < longest rollout timeout ${longest}`);
    // A push delivery cannot outlive Pub/Sub's ack deadline (at most 600 s).
    assert.equal(Number(setupValue('ACK_DEADLINE')), timeout);
    assert.ok(timeout <= 600);
  });
});
