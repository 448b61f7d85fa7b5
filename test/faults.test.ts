// Nothing is lost: with the fault proxy injecting 429s, 500s, 503s, resets, lost answers
// and stalls into 20% of the API server calls, 100 deploys through POST /deploy all end
// applied, each either at once or, answered 503, on redelivery (as Pub/Sub would).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { accessToken, kubectl, kubectlJson, sandbox } from './support/sandbox.ts';

/** web.yaml scaled to zero: many Deployments here, and their Pods would only load the sandbox for later tests. */
function idleWeb(): string {
  const yaml = fixture('manifests/web.yaml');
  assert.match(yaml, /replicas: 2\n/);
  return yaml.replace('replicas: 2\n', 'replicas: 0\n');
}

const INTENTS = 100;
const PARALLEL = 20;
const MAX_DELIVERIES = 5;

let proxy: FaultProxy;
let fn: RunningFunction;
let nss: string[];

before(async () => {
  const info = await sandbox();
  const run = Date.now().toString(36);
  nss = Array.from({ length: INTENTS }, (_, i) => `faults-${run}-${i}`);
  const list = { apiVersion: 'v1', kind: 'List', items: nss.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })) };
  await kubectl(['apply', '-f', '-'], JSON.stringify(list));
  proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8'), seed: 20_261_201, retryAfterSeconds: 1, stallMs: 1_000 });
  fn = await startFunction(
    configYaml({
      clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } },
      targets: Object.fromEntries(nss.map((ns, i) => [`t${i}`, webTarget(ns)])),
    }),
    { 'web.yaml': idleWeb(), token: await accessToken(info.serviceAccount) },
  );
});
after(async () => {
  await fn.close();
  await proxy.close();
});

test('with 20% of API server calls faulted, 100 intents all end applied; 503s are applied on redelivery', { timeout: 120_000 }, async (t) => {
  proxy.set({ rate: 0.2 });
  const deliveries = new Array<number>(INTENTS).fill(0);
  const statuses: number[][] = nss.map(() => []);
  let next = 0;
  // PARALLEL senders, each taking the next intent and redelivering it while it answers 503.
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      for (let i = next++; i < INTENTS; i = next++) {
        for (;;) {
          deliveries[i]!++;
          const res = await fn.post('/deploy', { target: `t${i}`, image: `${REPO}:fault-${i}` });
          statuses[i]!.push(res.status);
          if (res.status !== 503 || deliveries[i]! >= MAX_DELIVERIES) {
            assert.equal(res.status, 200, `t${i}: ${JSON.stringify(res.body)}`);
            assert.ok(res.body.status === 'ready' || res.body.status === 'applied', String(res.body.status));
            break;
          }
          assert.equal((res.body.error as { code: string }).code, 'CLUSTER_UNAVAILABLE');
        }
      }
    }),
  );
  proxy.set({ rate: 0 });

  // The API server's view: every target carries its own image.
  const deployments = await kubectlJson<{ items: { metadata: { namespace: string }; spec: { template: { spec: { containers: { image: string }[] } } } }[] }>([
    'get', 'deployments', '--all-namespaces',
  ]);
  const images = new Map(deployments.items.map((d) => [d.metadata.namespace, d.spec.template.spec.containers[0]?.image]));
  assert.deepEqual(nss.map((ns) => images.get(ns)), nss.map((_, i) => `${REPO}:fault-${i}`));

  const counts = proxy.counts();
  const injected = proxy.injected();
  const redelivered = deliveries.filter((d) => d > 1).length;
  t.diagnostic(`faults injected: ${JSON.stringify(counts)}; intents redelivered after a 503: ${redelivered}`);
  assert.ok(injected >= 0.15 * (injected + counts.forwarded), `only ${injected} of ${injected + counts.forwarded} calls were faulted`);
  for (const kind of ['429', '500', '503', 'reset', 'reset-after', 'stall'] as const) assert.ok(counts[kind] > 0, `no ${kind} was injected`);
});
