// `npm run sandbox`: start everything, print what is where, stay up until Ctrl-C.
import { defaultSandboxDir, startSandbox } from './index.ts';

const log = (line: string) => console.log(`[sandbox] ${line}`);
const sandbox = await startSandbox({ dir: defaultSandboxDir(), log });
const { info } = sandbox;
console.log(`
Sandbox is up (state in ${info.dir}/sandbox.json).
  Kubernetes API     ${info.server}   (CA ${info.caFile})
  kubectl            ${info.kubectl} --kubeconfig ${info.kubeconfig} get pods -A
  GKE cluster        projects/${info.project}/locations/${info.location}/clusters/${info.cluster}
  private cluster    projects/${info.project}/locations/${info.location}/clusters/${info.privateCluster}
  API fronts         dns ${info.fronts.dns}, internal ${info.fronts.internal}, gateway ${info.fronts.connectGateway}   (public CA ${info.publicCaFile})
  Container API      ${info.env.CONTAINER_API_ENDPOINT} (gRPC, plaintext)
  Metadata/identity  ${info.identity}   (stats: ${info.stats})
  Pub/Sub emulator   ${info.pubsub ?? '(off)'}
Function environment:
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
