// Chat notifications through the running function (src/report/chat.ts): deploys sent to /deploy
// into the sandbox cluster, each finished one posted to local fakes of a Google Chat and a Slack
// incoming webhook (test/support/chat-webhook.ts), named by `report.chat` and `report.slack`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startChatWebhook } from './support/chat-webhook.ts';
import { startFunction } from './support/function.ts';
import { kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';
import { until } from './support/until.ts';
import { REPORT_LIMITS } from '../src/report/limits.ts';

const LOG_URL = 'https://console.cloud.google.com/logs/query;query=jsonPayload.requestId%3D%22${requestId}%22';

test('a ready deploy and a rolled-back one each post one message to Google Chat and to Slack: target, cluster, image, outcome, reason, log link', async (t) => {
  const info = await useSandboxEnv();
  const ns = await namespace('chat');
  const chat = await startChatWebhook('/v1/spaces/AAAAsandbox/messages?key=AIzaFakeKeyForChatSandboxTest0123456&token=sandboxChatToken-0123456789%3D');
  const slack = await startChatWebhook('/services/T0SANDBOX/B0SANDBOX/slackSandboxSecret0123456789');
  t.after(() => Promise.all([chat.close(), slack.close()]));
  // Read by the config check at start-up, as the function reads them on Cloud Run.
  process.env.TEST_CHAT_WEBHOOK = chat.url;
  process.env.TEST_SLACK_WEBHOOK = slack.url;
  const report = { chat: { webhookEnv: 'TEST_CHAT_WEBHOOK' }, slack: { webhookEnv: 'TEST_SLACK_WEBHOOK' }, logUrl: LOG_URL };
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) }, report }), { 'web.yaml': fixture('manifests/web.yaml') });
  t.after(() => fn.close());

  const good = await fn.post('/deploy', { target: 'web', image: `${REPO}:v1` });
  assert.equal(good.body.status, 'ready', JSON.stringify(good.body));
  // A failing rollout after a good one: rolled back to v1.
  const bad = await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-pull-1` });
  assert.equal(bad.body.status, 'rolled-back', JSON.stringify(bad.body));
  assert.match(String(bad.body.reason), /^ImagePullBackOff/);

  const logs = (requestId: unknown) => LOG_URL.replace('${requestId}', String(requestId));
  const expected = [
    ['*web: ready* (deployed)', `image: \`${REPO}:v1\``, `cluster: sandbox (namespace ${ns})`, `request: ${String(good.body.requestId)} · logs: ${logs(good.body.requestId)}`].join('\n'),
    [
      '*web: rolled-back* (failed and rolled back)',
      `reason: ${String(bad.body.reason)}`,
      `image: \`${REPO}:fail-pull-1\``,
      `cluster: sandbox (namespace ${ns})`,
      `request: ${String(bad.body.requestId)} · logs: ${logs(bad.body.requestId)}`,
    ].join('\n'),
  ];
  assert.deepEqual(chat.posts.map((p) => p.body), expected.map((text) => ({ text })));
  assert.deepEqual(slack.posts.map((p) => p.body), expected.map((text) => ({ text })));
  assert.deepEqual(fn.logs.filter((l) => l.reporter !== undefined), [], 'no report failed');
  for (const url of [chat.url, slack.url]) assert.ok(!fn.lines.join('').includes(url), 'the webhook URLs are never logged');
});

test('reporters that never answer hold the answer for their 5 s bound, all together, and no longer; the deploy and its answer are as without them', async (t) => {
  // README (report): every call, and the final ones as a whole, are bounded by 5 s.
  const info = await useSandboxEnv();
  const ns = await namespace('chat-hang');
  const chat = await startChatWebhook('/v1/spaces/HANG/messages?key=k-hang&token=t-hang', 'hang');
  const slack = await startChatWebhook('/services/T0HANG/B0HANG/slackHangSecret0123456789', 'hang');
  t.after(() => Promise.all([chat.close(), slack.close()]));
  process.env.TEST_CHAT_HANG = chat.url;
  process.env.TEST_SLACK_HANG = slack.url;
  const report = { chat: { webhookEnv: 'TEST_CHAT_HANG' }, slack: { webhookEnv: 'TEST_SLACK_HANG' } };
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) }, report }), { 'web.yaml': fixture('manifests/web.yaml') });
  t.after(() => fn.close());

  const started = performance.now();
  const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:v1` });
  const took = performance.now() - started;
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
  assert.equal((await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'web'])).spec.template.spec.containers[0]?.image, `${REPO}:v1`);
  assert.deepEqual([chat.posts.length, slack.posts.length], [1, 1], 'each was posted to, and never answered');
  // What the reports added to the answer: the deploy's own time is its elapsedMs.
  const held = took - Number(res.body.elapsedMs);
  assert.ok(held >= REPORT_LIMITS.callTimeoutMs - 100 && held <= REPORT_LIMITS.callTimeoutMs + 1_500, `the reports held the answer ${Math.round(held)} ms`);
  assert.equal(REPORT_LIMITS.callTimeoutMs, 5_000);
  await until('both failures logged', () => ['chat', 'slack'].every((r) => fn.logs.some((l) => l.reporter === r)), { timeoutMs: 2_000, seen: () => fn.logs.map((l) => l.message) });
  for (const r of ['chat', 'slack']) {
    assert.deepEqual(fn.logs.filter((l) => l.reporter === r).map((l) => [l.severity, l.message]), [['WARNING', `report to ${r} failed for web: The operation was aborted due to timeout`]]);
  }
});
