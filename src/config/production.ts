// Settings that are fine on a laptop but weaken trust on Cloud Run. K_SERVICE is set on
// every Cloud Run service, so its presence is what "production" means here.
import { isRecord } from '../guards.ts';
import { CHAT_KINDS } from './schema.ts';

const CALLER_ROUTES = ['direct', 'pubsub', 'scheduler'] as const;
/** The certs google-auth-library verifies ID tokens against by default: Google's own signer. */
const GOOGLE_CERTS_URL = 'https://www.googleapis.com/oauth2/v1/certs';

/**
 * Whether a caller route's setting makes it verify a Google-signed OIDC token: an audience and
 * at least one service account, and no `token: none`. Anything else (`none`, `{token: none,
 * subscriptions}`, whatever form the schema accepts later) lets anyone call it: service.yaml
 * turns Cloud Run's invoker IAM check off, so the route itself is the only check.
 */
function verifiesCaller(setting: unknown): boolean {
  return (
    isRecord(setting) &&
    setting.token === undefined &&
    typeof setting.audience === 'string' &&
    setting.audience.trim() !== '' &&
    Array.isArray(setting.serviceAccounts) &&
    setting.serviceAccounts.length > 0
  );
}

/** Problems with `raw` (the parsed YAML) and `env` when running on Cloud Run; none elsewhere. */
export function productionProblems(raw: unknown, env: NodeJS.ProcessEnv): string[] {
  if (!env.K_SERVICE) return [];
  const why = `is refused in production (K_SERVICE is set)`;
  const auth = isRecord(raw) && isRecord(raw.auth) ? raw.auth : {};
  const problems: string[] = [];
  for (const route of CALLER_ROUTES) {
    const setting = auth[route];
    // An absent optional route is not served (direct is required: the schema says so).
    if (setting === undefined || verifiesCaller(setting)) continue;
    problems.push(`auth.${route}: ${JSON.stringify(setting)} ${why}: it lets anyone call /${route === 'direct' ? 'deploy' : route}; give it an OIDC audience and serviceAccounts`);
  }
  // Another signer's certs would let whoever holds its key mint the ID tokens checked above.
  if (auth.certsUrl !== undefined && auth.certsUrl !== GOOGLE_CERTS_URL) {
    problems.push(`auth.certsUrl: must be Google's ${GOOGLE_CERTS_URL} (or left out) in production (K_SERVICE is set), got ${JSON.stringify(auth.certsUrl)}`);
  }
  const report = isRecord(raw) && isRecord(raw.report) ? raw.report : {};
  const setting = (key: string, field: string): unknown => (isRecord(report[key]) ? report[key][field] : undefined);
  // A status token goes there, or the URL is one (a chat webhook's, named by its variable, never quoted): only over TLS.
  const overTls = (at: string, url: unknown, shown: string) => {
    if (typeof url === 'string' && url.startsWith('http://')) problems.push(`${at}: must be https:// in production (K_SERVICE is set), got ${shown}`);
  };
  for (const host of ['github', 'gitlab'] as const) overTls(`report.${host}.apiUrl`, setting(host, 'apiUrl'), String(setting(host, 'apiUrl')));
  for (const kind of CHAT_KINDS) {
    const name = setting(kind, 'webhookEnv');
    if (typeof name === 'string') overTls(`report.${kind}.webhookEnv`, env[name]?.trim(), `an http:// URL in ${name}`);
  }
  if (env.CONTAINER_API_ENDPOINT) {
    // It receives the ADC token too: only Google's own Container API may.
    problems.push(`CONTAINER_API_ENDPOINT: a Container API endpoint other than Google's ${why}; unset it`);
  }
  if (env.CONNECT_GATEWAY_ENDPOINT) {
    // It receives the ADC access token: only Google's own gateway may.
    problems.push(`CONNECT_GATEWAY_ENDPOINT: another Connect gateway than connectgateway.googleapis.com ${why}; unset it`);
  }
  if (env.REGISTRY_HOST) {
    // It receives the ADC access token too: only Google's registries may.
    problems.push(`REGISTRY_HOST: a registry besides Artifact Registry and gcr.io, sent the ADC token, ${why}; unset it`);
  }
  if (env.DEPLOYER_CLOCK_FILE) {
    // Whoever can write that file would open every deploy window.
    problems.push(`DEPLOYER_CLOCK_FILE: a test clock for deploy windows and approvals ${why}; unset it`);
  }
  return problems;
}
