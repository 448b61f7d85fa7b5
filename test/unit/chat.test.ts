// Chat notifications (src/report/chat.ts) without a cluster: `report.chat` / `report.slack` and
// their refusals, and the messages a local webhook fake (test/support/chat-webhook.ts) receives
// through the reporters wrapper: what each outcome says, which send none, and the bound.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { DeployIntent } from '../../src/core/intent.ts';
import { jsonLogger } from '../../src/core/log.ts';
import { DEPLOY_STATUSES, type DeployResult, type DeployStatus, type FanOutResult, type TargetResult } from '../../src/core/result.ts';
import { DeployError } from '../../src/errors.ts';
import { chatText } from '../../src/report/chat.ts';
import { REPORT_LIMITS } from '../../src/report/limits.ts';
import { reportersFor } from '../../src/report/reporters.ts';
import { startChatWebhook } from '../support/chat-webhook.ts';
import { until } from '../support/until.ts';
import { configProblems } from '../support/config.ts';

const BASE = `
auth: { direct: none }
clusters:
  prod: { gke: { project: p, location: l, name: c } }
  eu: { gke: { project: p, location: europe-west1, name: eu } }
  us: { gke: { project: p, location: us-central1, name: us } }
targets:
  web: { cluster: prod, namespace: web, deployment: web, images: [europe-docker.pkg.dev/p/apps/web] }
  shop: { clusters: [eu, us], namespace: shop, deployment: shop, images: [europe-docker.pkg.dev/p/apps/shop] }
`;
// Shaped as Google Chat's: the key and the token ride in the query (the token percent-encoded).
const KEY = 'AIzaFakeKeyForChatTests0123456789abcd';
const TOKEN = 'chatTokenForTests-0123456789=';
const GOOGLE_PATH = `/v1/spaces/AAAAtest/messages?key=${KEY}&token=${encodeURIComponent(TOKEN)}`;
const SLACK_PATH = '/services/T0TEST/B0TEST/slackSecretForChatTests0123';
const LOG_URL = 'https://logs.example.com/q?id=${requestId}';

const problems = (report: string, env: NodeJS.ProcessEnv) => configProblems(`${BASE}report: ${report}\n`, env);

describe('report.chat and report.slack configuration', () => {
  test('a webhook variable each, holding an https URL (http only to loopback)', () => {
    const env = { CHAT_HOOK: `https://chat.googleapis.com${GOOGLE_PATH}`, SLACK_HOOK: 'http://127.0.0.1:9/services/T/B/x' };
    const config = parseConfig(`${BASE}report: { chat: { webhookEnv: CHAT_HOOK }, slack: { webhookEnv: SLACK_HOOK } }\n`, '/nowhere/deployer.yaml', env);
    assert.deepEqual(config.report, { chat: { webhookEnv: 'CHAT_HOOK' }, slack: { webhookEnv: 'SLACK_HOOK' } });
  });

  test('refused: a variable not set, an http URL off this machine, not a URL; the URL is never quoted', () => {
    const offMachine = `http://chat.example.com${GOOGLE_PATH}`;
    assert.deepEqual(problems('{ slack: { webhookEnv: SLACK_HOOK } }', {}), ['report.slack.webhookEnv: environment variable SLACK_HOOK is not set']);
    assert.deepEqual(problems('{ chat: { webhookEnv: CHAT_HOOK } }', { CHAT_HOOK: offMachine }), [
      'report.chat.webhookEnv: the URL in CHAT_HOOK must be https:// (http:// only to localhost or 127.0.0.1, for a local fake)',
    ]);
    assert.deepEqual(problems('{ chat: { webhookEnv: CHAT_HOOK } }', { CHAT_HOOK: `chat.googleapis.com${GOOGLE_PATH}` }), ['report.chat.webhookEnv: the URL in CHAT_HOOK must be an https:// URL']);
  });

  test('on Cloud Run only https: http refused even to loopback, without quoting it', () => {
    const run = (url: string) => problems('{ chat: { webhookEnv: CHAT_HOOK } }', { CHAT_HOOK: url, K_SERVICE: 'deployer' }).filter((p) => p.startsWith('report.'));
    assert.deepEqual(run(`http://127.0.0.1:9${GOOGLE_PATH}`), ['report.chat.webhookEnv: must be https:// in production (K_SERVICE is set), got an http:// URL in CHAT_HOOK']);
    assert.deepEqual(run(`https://chat.googleapis.com${GOOGLE_PATH}`), []);
  });
});

const intent: DeployIntent = { target: 'web', image: 'europe-docker.pkg.dev/p/apps/web:v1', dryRun: false, requestId: 'r-1', source: 'direct', eventId: 'e-1', eventTime: '2026-11-01T00:00:00Z' };
const result = (status: DeployStatus, extra: Partial<DeployResult> = {}): DeployResult => ({
  status, target: 'web', cluster: 'prod', namespace: 'web', image: intent.image!, requestId: 'r-1', dryRun: false, objects: [], elapsedMs: 5, ...extra,
});

interface Line { severity: string; message: string; reporter?: string }

/** The reporters `report.<kind>` makes, posting to a fresh fake; `send` deploys through them. */
async function chatDeployer(t: TestContext, kind: 'chat' | 'slack', opts: { answer?: 'ok' | 'hang' | 'refuse'; logUrl?: boolean } = {}) {
  const hook = await startChatWebhook(kind === 'chat' ? GOOGLE_PATH : SLACK_PATH, opts.answer);
  t.after(() => hook.close());
  const env = { HOOK: hook.url };
  const config = parseConfig(`${BASE}report: { ${kind}: { webhookEnv: HOOK }${opts.logUrl ? `, logUrl: "${LOG_URL}"` : ''} }\n`, '/nowhere/deployer.yaml', env);
  const raw: string[] = [];
  const log = jsonLogger((l) => raw.push(l));
  const reporters = reportersFor(config, log, env);
  const send = (outcome: TargetResult | DeployError, sent: DeployIntent = intent) =>
    reporters.wrap(() => (outcome instanceof DeployError ? Promise.reject(outcome) : Promise.resolve(outcome)))(sent);
  const lines = () => raw.map((l) => JSON.parse(l) as Line);
  const texts = () => hook.posts.map((p) => (p.body as { text: string }).text);
  return { hook, raw, lines, send, texts };
}

describe('the messages', () => {
  test('ready, to Google Chat: one JSON POST {text} to the webhook URL, key and token as given; target, image, cluster, the log link', async (t) => {
    const { hook, send } = await chatDeployer(t, 'chat', { logUrl: true });
    assert.equal((await send(result('ready'))).status, 'ready');
    assert.equal(hook.posts.length, 1);
    const [post] = hook.posts;
    assert.deepEqual([post!.method, post!.path, post!.query.get('key'), post!.query.get('token'), post!.contentType], ['POST', '/v1/spaces/AAAAtest/messages', KEY, TOKEN, 'application/json; charset=UTF-8']);
    assert.deepEqual(post!.body, {
      text: [
        '*web: ready* (deployed)',
        'image: `europe-docker.pkg.dev/p/apps/web:v1`',
        'cluster: prod (namespace web)',
        'request: r-1 · logs: https://logs.example.com/q?id=r-1',
      ].join('\n'),
    });
  });

  const reason = 'ImagePullBackOff: Back-off pulling image "web:v2" <from R&D>';
  const rolledBack = result('rolled-back', { image: 'europe-docker.pkg.dev/p/apps/web:v2', reason, stage: 'rollout' });
  test('rolled back, to Google Chat: the reason as it is', async (t) => {
    const { texts, send } = await chatDeployer(t, 'chat');
    await send(rolledBack);
    assert.deepEqual(texts(), [
      ['*web: rolled-back* (failed and rolled back)', `reason: ${reason}`, 'image: `europe-docker.pkg.dev/p/apps/web:v2`', 'cluster: prod (namespace web)', 'request: r-1'].join('\n'),
    ]);
  });

  test('rolled back, to Slack: the same message, &, < and > escaped as mrkdwn wants; the log link too', async (t) => {
    const { hook, texts, send } = await chatDeployer(t, 'slack', { logUrl: true });
    await send(rolledBack, { ...intent, requestId: 'r&2' });
    assert.equal(hook.posts[0]?.path, SLACK_PATH);
    assert.deepEqual(texts(), [
      [
        '*web: rolled-back* (failed and rolled back)',
        'reason: ImagePullBackOff: Back-off pulling image "web:v2" &lt;from R&amp;D&gt;',
        'image: `europe-docker.pkg.dev/p/apps/web:v2`',
        'cluster: prod (namespace web)',
        'request: r&amp;2 · logs: https://logs.example.com/q?id=r%262',
      ].join('\n'),
    ]);
  });

  test('an error: its code and message, the image asked for, the clusters the target deploys to; still thrown', async (t) => {
    const { texts, send } = await chatDeployer(t, 'chat');
    const refused = new DeployError('IMAGE_NOT_ALLOWED', 'docker.io/library/nginx:1 is not in the images of target web');
    await assert.rejects(send(refused, { ...intent, image: 'docker.io/library/nginx:1' }), refused);
    assert.deepEqual(texts(), [
      [
        '*web: error* (could not deploy)',
        'error: IMAGE_NOT_ALLOWED: docker.io/library/nginx:1 is not in the images of target web',
        'image: `docker.io/library/nginx:1`',
        'cluster: prod',
        'request: r-1',
      ].join('\n'),
    ]);
  });

  test('a fan-out: each cluster with its status, the reason naming the one that failed', async (t) => {
    const { texts, send } = await chatDeployer(t, 'chat');
    const fan: FanOutResult = {
      status: 'failed', target: 'shop', namespace: 'shop', image: 'europe-docker.pkg.dev/p/apps/shop:v3', requestId: 'r-2', dryRun: false, strategy: 'parallel', elapsedMs: 9,
      clusters: [
        { cluster: 'eu', status: 'ready', objects: [], elapsedMs: 4 },
        { cluster: 'us', status: 'failed', objects: [], elapsedMs: 9, error: { code: 'CLUSTER_UNAVAILABLE', message: 'us: connection refused', retryable: true } },
      ],
    };
    await send(fan, { ...intent, target: 'shop', image: 'europe-docker.pkg.dev/p/apps/shop:v3', requestId: 'r-2' });
    assert.deepEqual(texts(), [
      [
        '*shop: failed* (failed, not rolled back)',
        'reason: us failed (us: connection refused)',
        'image: `europe-docker.pkg.dev/p/apps/shop:v3`',
        'clusters: eu ready, us failed CLUSTER_UNAVAILABLE (namespace shop)',
        'request: r-2',
      ].join('\n'),
    ]);
  });

  test('held: says so, and why, so that someone can act', async (t) => {
    const { texts, send } = await chatDeployer(t, 'chat');
    await send(result('held', { reason: 'deny window freeze: 2026-12-24T00:00:00Z to 2026-12-27T00:00:00Z (Europe/Paris)' }));
    assert.deepEqual(texts(), [
      [
        '*web: held* (held: deploys when its window opens or it is approved)',
        'reason: deny window freeze: 2026-12-24T00:00:00Z to 2026-12-27T00:00:00Z (Europe/Paris)',
        'image: `europe-docker.pkg.dev/p/apps/web:v1`',
        'cluster: prod (namespace web)',
        'request: r-1',
      ].join('\n'),
    ]);
  });

  test('none for a duplicate, a stale deploy or a dry run; the ready deploy after them is posted', async (t) => {
    const { texts, send } = await chatDeployer(t, 'slack');
    await send(result('duplicate', { recorded: { eventId: 'e-1', eventTime: intent.eventTime } }));
    await send(result('stale', { recorded: { eventId: 'e-0', eventTime: '2026-11-02T00:00:00Z' } }));
    await send(result('dry-run', { dryRun: true }), { ...intent, dryRun: true });
    await send(result('ready'));
    assert.deepEqual(texts(), [['*web: ready* (deployed)', 'image: `europe-docker.pkg.dev/p/apps/web:v1`', 'cluster: prod (namespace web)', 'request: r-1'].join('\n')]);
  });

  test('every status has its place: each sends a message but dry-run, stale and duplicate', () => {
    const silent = DEPLOY_STATUSES.filter((s) => chatText('chat', intent, { ok: true, result: result(s) }) === undefined);
    assert.deepEqual(silent, ['dry-run', 'stale', 'duplicate']);
    for (const s of DEPLOY_STATUSES.filter((x) => !silent.includes(x))) assert.match(chatText('chat', intent, { ok: true, result: result(s) })!, new RegExp(`^\\*web: ${s}\\* \\(`), s);
  });

  test('a long reason is cut to the limit', () => {
    const text = chatText('chat', intent, { ok: true, result: result('failed', { reason: 'x'.repeat(10_000) }) })!;
    assert.equal(text.length, REPORT_LIMITS.chatTextLength);
    assert.ok(text.endsWith('x…'));
  });
});

describe('bounded, never failing, never leaking the URL', () => {
  test('a webhook that never answers: the deploy answers within the bound, a WARNING is logged, no line holds the URL', async (t) => {
    const { hook, raw, lines, send } = await chatDeployer(t, 'chat', { answer: 'hang' });
    const started = Date.now();
    assert.equal((await send(result('ready'))).status, 'ready');
    const took = Date.now() - started;
    assert.ok(took < REPORT_LIMITS.callTimeoutMs + 1_000, `answered after ${took} ms`);
    assert.equal(hook.posts.length, 1, 'the post arrived and was never answered');
    await until('the reporter failure logged', () => lines().find((l) => l.reporter === 'chat'), { timeoutMs: 2_000 });
    assert.deepEqual(
      lines().filter((l) => l.reporter === 'chat').map((l) => [l.severity, l.message]),
      [['WARNING', 'report to chat failed for web: The operation was aborted due to timeout']],
    );
    for (const secret of [hook.url, KEY, TOKEN, encodeURIComponent(TOKEN)]) assert.ok(!raw.join('').includes(secret), `a log line holds ${secret.slice(0, 12)}…`);
  });

  test('a refusal quoting the URL, its key and its token: logged as a WARNING with each blanked out', async (t) => {
    const { hook, raw, lines, send } = await chatDeployer(t, 'chat', { answer: 'refuse' });
    assert.equal((await send(result('ready'))).status, 'ready');
    const warning = lines().find((l) => l.reporter === 'chat');
    assert.equal(warning?.severity, 'WARNING');
    assert.equal(
      warning.message,
      'report to chat failed for web: Google Chat answered 400: {"error":{"code":400,"message":"no such webhook [redacted]: key [redacted], token [redacted]","status":"INVALID_ARGUMENT"}}',
    );
    for (const secret of [hook.url, KEY, TOKEN, encodeURIComponent(TOKEN)]) assert.ok(!raw.join('').includes(secret), `a log line holds ${secret.slice(0, 12)}…`);
  });
});
