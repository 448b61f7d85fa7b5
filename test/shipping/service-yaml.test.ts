// service.yaml: a valid Cloud Run service (Knative schema with Cloud Run's fields and
// limits), wired to what setup.sh creates, sized by the measured memory, with a timeout
// that covers the longest rollout the examples configure.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';
import { cloudRunService, render, type CloudRunService } from './support/knative.ts';

const root = path.resolve(import.meta.dirname, '../..');
const text = readFileSync(path.join(root, 'service.yaml'), 'utf8');
const setupScript = readFileSync(path.join(root, 'deploy/gcloud/setup.sh'), 'utf8');
const rendered = render(text, {
  __IMAGE__: 'europe-west1-docker.pkg.dev/my-proj/gke-deployer/gke-deployer:b1',
  __PROJECT_ID__: 'my-proj',
  __REGION__: 'europe-west1',
  __SERVICE__: 'gke-deployer',
});

function service(): CloudRunService {
  const parsed = cloudRunService.safeParse(parse(rendered));
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues, null, 2));
  return parsed.data;
}

const container = () => service().spec.template.spec.containers[0]!;
const env = (name: string) => container().env?.find((e) => e.name === name);
/** A shell variable's value as setup.sh sets it (`NAME=value`, `NAME=(a b)`). */
function setupValue(name: string): string {
  const m = new RegExp(`^${name}=(\\(([^)]*)\\)|\\S+)`, 'm').exec(setupScript);
  assert.ok(m, `setup.sh sets ${name}`);
  return (m[2] ?? m[1]!).replace(/\$PROJECT/g, 'my-proj');
}

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

  test('takes the webhook secrets from Secret Manager env refs, the secrets setup.sh creates', () => {
    const refs = ['GITHUB_WEBHOOK_SECRET', 'GITLAB_WEBHOOK_TOKEN'].map((n) => env(n)?.valueFrom?.secretKeyRef);
    assert.deepEqual(refs.map((r) => r?.name), setupValue('WEBHOOK_SECRETS').split(/\s+/));
    for (const r of refs) assert.equal(r?.key, 'latest');
    // No secret is written into the file.
    for (const e of container().env ?? []) if (/SECRET|TOKEN/.test(e.name)) assert.equal(e.value, undefined, e.name);
  });

  test('memory fits the measured worst case at its concurrency, and the heap cap leaves room outside the heap', () => {
    const spec = service().spec.template.spec;
    const [, amount, unit] = /^(\d+)(Mi|Gi)$/.exec(container().resources!.limits.memory)!;
    const memoryMiB = Number(amount) * (unit === 'Gi' ? 1024 : 1);
    // Measured with this start command (see the comment in service.yaml): a warm instance
    // plateaus at 277–319 MB with a capped heap; each concurrent 31 MiB body (Cloud Run's
    // limit is 32 MiB; the function refuses it only after functions-framework parsed it)
    // adds ~100 MB.
    const plateauMiB = 320;
    const perRequestMiB = 100;
    assert.ok(plateauMiB + spec.containerConcurrency * perRequestMiB <= memoryMiB * 0.9, `${spec.containerConcurrency} × ${perRequestMiB} + ${plateauMiB} MiB in ${memoryMiB} MiB`);
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
