// The endpoint rules of src/cluster/gke-endpoint.ts over getCluster answers shaped as
// GKE sends them (v1 Cluster field names; '' and null for unset fields).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseEndpoint, offeredEndpoints, type ClusterEndpoints } from '../../src/cluster/gke-endpoint.ts';
import { DeployError } from '../../src/errors.ts';

const resource = 'projects/p/locations/l/clusters/c';
const DNS = 'gke-0123456789abcdef-p.europe-west1.gke.goog';

function cluster(opts: { dns?: boolean | 'internal-only'; publicOn?: boolean; internal?: boolean; membership?: boolean }): ClusterEndpoints {
  return {
    endpoint: opts.publicOn === false ? '10.0.0.2' : '34.1.2.3',
    controlPlaneEndpointsConfig: {
      dnsEndpointConfig: opts.dns ? { endpoint: DNS, allowExternalTraffic: opts.dns === true } : null,
      ipEndpointsConfig: {
        enabled: true,
        enablePublicEndpoint: opts.publicOn ?? true,
        publicEndpoint: opts.publicOn === false ? '' : '34.1.2.3',
        privateEndpoint: opts.internal === false ? '' : '10.0.0.2',
      },
    },
    fleet: opts.membership ? { membership: '//gkehub.googleapis.com/projects/123/locations/l/memberships/c' } : null,
  };
}

const choose = (choice: Parameters<typeof chooseEndpoint>[0], c: ClusterEndpoints, extra: { membership?: string; gateway?: string } = {}) =>
  chooseEndpoint(choice, offeredEndpoints(c), { resource, ...extra });

function refused(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DeployError);
    assert.equal(err.code, 'CLUSTER_ERROR');
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('auto', () => {
  test('the DNS endpoint when it allows external traffic, verified without the cluster CA', () => {
    const chosen = choose('auto', cluster({ dns: true }));
    assert.deepEqual({ kind: chosen.kind, server: chosen.server, usesClusterCa: chosen.usesClusterCa }, { kind: 'dns', server: `https://${DNS}`, usesClusterCa: false });
    assert.match(chosen.reason, /allows external traffic/);
  });

  test('then the public IP, saying why the DNS endpoint was passed over', () => {
    const internalOnly = choose('auto', cluster({ dns: 'internal-only' }));
    assert.deepEqual([internalOnly.kind, internalOnly.server, internalOnly.usesClusterCa], ['public', 'https://34.1.2.3', true]);
    assert.match(internalOnly.reason, /does not allow external traffic/);
    assert.match(choose('auto', cluster({})).reason, /no DNS endpoint/);
  });

  test('then the internal IP', () => {
    const chosen = choose('auto', cluster({ dns: 'internal-only', publicOn: false }));
    assert.deepEqual([chosen.kind, chosen.server, chosen.usesClusterCa], ['internal', 'https://10.0.0.2', true]);
  });

  test('never the gateway, and nothing reachable is a CLUSTER_ERROR', () => {
    refused(() => choose('auto', cluster({ publicOn: false, internal: false, membership: true })), /no endpoint this deployer can reach/, /connect-gateway \(projects\/123\/locations\/l\/memberships\/c\)/);
  });
});

describe('explicit kinds', () => {
  test('public on a cluster whose public endpoint is disabled names what it offers', () => {
    refused(() => choose('public', cluster({ dns: true, publicOn: false, membership: true })), /public IP endpoint is disabled/, new RegExp(`dns \\(${DNS}\\)`), /internal \(10\.0\.0\.2\)/);
  });

  test('dns on an internal-only DNS endpoint is refused, not downgraded', () => {
    refused(() => choose('dns', cluster({ dns: 'internal-only' })), /allowExternalTraffic/, /public \(34\.1\.2\.3\)/);
  });

  test('internal needs a private endpoint', () => {
    refused(() => choose('internal', cluster({ internal: false })), /no internal IP endpoint/);
  });

  test('connect-gateway: the fleet membership, or the configured one, as a gkeMemberships URL', () => {
    const fromFleet = choose('connect-gateway', cluster({ membership: true }));
    assert.equal(fromFleet.server, 'https://connectgateway.googleapis.com/v1/projects/123/locations/l/gkeMemberships/c');
    assert.equal(fromFleet.usesClusterCa, false);
    const configured = choose('connect-gateway', cluster({}), { membership: 'projects/p/locations/global/memberships/m', gateway: 'https://127.0.0.1:8443/' });
    assert.equal(configured.server, 'https://127.0.0.1:8443/v1/projects/p/locations/global/gkeMemberships/m');
    refused(() => choose('connect-gateway', cluster({})), /not registered to a fleet/);
  });
});

describe('older clusters: privateClusterConfig only', () => {
  test('enablePrivateEndpoint makes `endpoint` the private address, never a public one', () => {
    const legacy: ClusterEndpoints = { endpoint: '10.0.0.2', privateClusterConfig: { enablePrivateEndpoint: true, privateEndpoint: '10.0.0.2', publicEndpoint: '' } };
    assert.deepEqual(offeredEndpoints(legacy), { internal: '10.0.0.2' });
    assert.equal(choose('auto', legacy).kind, 'internal');
  });

  test('a plain public cluster', () => {
    assert.deepEqual(offeredEndpoints({ endpoint: '34.1.2.3' }), { public: '34.1.2.3' });
  });

  test('disabled IP endpoints offer no IP at all', () => {
    const off: ClusterEndpoints = { endpoint: '34.1.2.3', controlPlaneEndpointsConfig: { ipEndpointsConfig: { enabled: false }, dnsEndpointConfig: { endpoint: DNS, allowExternalTraffic: true } } };
    assert.deepEqual(offeredEndpoints(off), { dns: DNS });
  });
});
