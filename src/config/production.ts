// Settings that are fine on a laptop but weaken trust on Cloud Run. K_SERVICE is set on
// every Cloud Run service, so its presence is what "production" means here.
import { isRecord } from '../guards.ts';

const CALLER_ROUTES = ['direct', 'pubsub', 'scheduler'] as const;

/** Problems with `raw` (the parsed YAML) and `env` when running on Cloud Run; none elsewhere. */
export function productionProblems(raw: unknown, env: NodeJS.ProcessEnv): string[] {
  if (!env.K_SERVICE) return [];
  const why = `is refused in production (K_SERVICE is set)`;
  const auth = isRecord(raw) && isRecord(raw.auth) ? raw.auth : {};
  const problems: string[] = [];
  for (const route of CALLER_ROUTES) {
    if (auth[route] === 'none') problems.push(`auth.${route}: "none" ${why}: give it an OIDC audience and serviceAccounts`);
  }
  if (typeof auth.certsUrl === 'string' && !auth.certsUrl.startsWith('https://')) {
    problems.push(`auth.certsUrl: must be https:// in production (K_SERVICE is set), got ${auth.certsUrl}`);
  }
  const report = isRecord(raw) && isRecord(raw.report) ? raw.report : {};
  for (const host of ['github', 'gitlab'] as const) {
    const settings = report[host];
    const url = isRecord(settings) ? settings.apiUrl : undefined;
    // The status token goes there: only over TLS.
    if (typeof url === 'string' && url.startsWith('http://')) problems.push(`report.${host}.apiUrl: must be https:// in production (K_SERVICE is set), got ${url}`);
  }
  if (env.CONTAINER_API_ENDPOINT) {
    problems.push(`CONTAINER_API_ENDPOINT: a plaintext Container API endpoint ${why}; unset it to use Google's`);
  }
  if (env.CONNECT_GATEWAY_ENDPOINT) {
    // It receives the ADC access token: only Google's own gateway may.
    problems.push(`CONNECT_GATEWAY_ENDPOINT: another Connect gateway than connectgateway.googleapis.com ${why}; unset it`);
  }
  return problems;
}
