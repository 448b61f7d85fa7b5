// README (clusters.<name>, gke): `cacheTtlSeconds` defaults to 600, and a warm instance
// reuses its getCluster lookup for that long. The default as the config file gives it,
// honoured by GkeAccess under a mocked clock: reused until 600 s, looked up again at 600 s.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ClusterManagerClient } from '@google-cloud/container';
import { GkeAccess } from '../../src/cluster/gke.ts';
import { parseConfig } from '../../src/config/load.ts';

test('cacheTtlSeconds: 600 by default, and a lookup is reused for exactly that long', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gke-cache-'));
  const config = parseConfig('auth: { direct: none }\nclusters: { c: { gke: { project: p, location: l, name: n } } }\ntargets: {}\n', path.join(dir, 'deployer.yaml'));
  const spec = config.clusters.get('c');
  assert.ok(spec && 'gke' in spec);
  assert.equal(spec.gke.cacheTtlSeconds, 600);

  let lookups = 0;
  // A DNS endpoint open to external traffic: no cluster CA to write.
  const cluster = { endpoint: '34.1.2.3', controlPlaneEndpointsConfig: { dnsEndpointConfig: { endpoint: 'gke-0123456789abcdef-p.l.gke.goog', allowExternalTraffic: true } } };
  const api = { getCluster: () => (lookups++, Promise.resolve([cluster])) } as unknown as ClusterManagerClient;
  const credentials = { authorization: () => Promise.resolve(undefined), invalidate: () => {} };
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const access = new GkeAccess(spec.gke, () => Promise.resolve(api), credentials);

  await access.connect();
  assert.equal(lookups, 1);
  t.mock.timers.tick(600_000 - 1);
  await access.connect();
  assert.equal(lookups, 1, 'reused until 600 s have passed');
  t.mock.timers.tick(1);
  await access.connect();
  assert.equal(lookups, 2, 'looked up again at 600 s');
});
