// `npm run sandbox`: start everything, print what is where, stay up until Ctrl-C.
// `npm run sandbox -- --clusters 2` (or SANDBOX_CLUSTERS=2) starts a second control plane.
import { parseArgs } from 'node:util';
import { defaultSandboxDir, startSandbox } from './index.ts';

const { values } = parseArgs({ options: { clusters: { type: 'string' } } });
const clustersArg = values.clusters ?? process.env.SANDBOX_CLUSTERS ?? '1';
const clusters = /^\d+$/.test(clustersArg) ? Number(clustersArg) : Number.NaN;
const log = (line: string) => console.log(`[sandbox] ${line}`);
const sandbox = await startSandbox({ dir: defaultSandboxDir(), log, clusters });
const { info } = sandbox;
console.log(`
Sandbox is up (state in ${info.dir}/sandbox.json).
  Kubernetes API     ${info.server}   (CA ${info.caFile})
  kubectl            ${info.kubectl} --kubeconfig ${info.kubeconfig} get pods -A
  GKE cluster        projects/${info.project}/locations/${info.location}/clusters/${info.cluster}
  private cluster    projects/${info.project}/locations/${info.location}/clusters/${info.privateCluster}
  API fronts         dns ${info.fronts.dns}, internal ${info.fronts.internal}, gateway ${info.fronts.connectGateway}   (public CA ${info.publicCaFile})
  Container API      ${info.env.CONTAINER_API_ENDPOINT} (gRPC over TLS, public CA; access token checked)
  Metadata/identity  ${info.identity}   (stats: ${info.stats})
  Pub/Sub emulator   ${info.pubsub ?? '(off)'}
  OCI registry       ${info.registry.host}   (TLS with the public CA; as Artifact Registry: user oauth2accesstoken, password a metadata-server access token)
  oras push          curl -s -H 'Metadata-Flavor: Google' http://${info.env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default/token | jq -r .access_token | ${info.registry.oras} push --ca-file ${info.registry.caFile} -u oauth2accesstoken --password-stdin ${info.registry.host}/REPO/NAME:TAG FILE…
${info.clusters.slice(1).map((c) => `  GKE cluster        projects/${info.project}/locations/${c.location}/clusters/${c.name}   ${c.server} (CA ${c.caFile}; kubectl --kubeconfig ${c.kubeconfig})\n`).join('')}Function environment:
${Object.entries(info.env).map(([k, v]) => `  export ${k}=${v}`).join('\n')}
Press Ctrl-C to stop.`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    void sandbox.stop().then(() => process.exit(0));
  });
}
