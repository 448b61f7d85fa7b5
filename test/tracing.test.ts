// Traces (issue 21): a deploy is one trace continuing the caller's, with a span per stage
// (lookup, token, apply, wait, rollback, report) under the deploy's, each with its attributes.
// Spans go to an in-memory exporter here; the
// production bundle's Cloud Trace exporter is exercised in test/bundle.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { startChatWebhook, type ChatWebhook } from './support/chat-webhook.ts';
import { namespace, useSandboxEnv } from './support/sandbox.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('traces of a deploy', () => {
  let fn: RunningFunction;
  let chat: ChatWebhook;
  const exporter = new InMemorySpanExporter();

  before(async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('trace');
    chat = await startChatWebhook('/v1/spaces/TRACE/messages?key=k&token=t');
    process.env.TEST_TRACE_CHAT_URL = chat.url;
    fn = await startFunction(
      configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) }, report: { chat: { webhookEnv: 'TEST_TRACE_CHAT_URL' } } }),
      { 'web.yaml': fixture('manifests/web.yaml') },
      {},
      { spanExporter: exporter },
    );
  });
  after(async () => {
    await fn?.close();
    await chat?.close();
  });

  /** The spans of one request's trace, by name, each with its parent's name. */
  function spansOf(traceId: string): { name: string; parent: string | undefined; span: ReadableSpan }[] {
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    return spans.map((s) => {
      const parentId = s.parentSpanContext?.spanId;
      return { name: s.name, parent: parentId === CALLER_SPAN ? 'caller' : parentId === undefined ? undefined : (byId.get(parentId)?.name ?? `unknown ${parentId}`), span: s };
    });
  }

  test('a first deploy: one trace under the caller\'s span, deploy → lookup, apply (→ token), wait, report, with their attributes', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0`, eventId: 'trace-1' }, { traceparent: `00-${TRACE}-${CALLER_SPAN}-01` });
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    const spans = spansOf(TRACE);
    assert.deepEqual(spans.map((s) => `${s.parent ?? '-'} > ${s.name}`).sort(), [
      'apply > token',
      'caller > deploy',
      'deploy > apply',
      'deploy > lookup',
      'deploy > report',
      'deploy > wait',
    ]);
    const deploy = spans.find((s) => s.name === 'deploy')!.span;
    assert.deepEqual(
      [deploy.attributes['gke_deployer.target'], deploy.attributes['gke_deployer.status'], deploy.attributes['gke_deployer.event_id'], deploy.attributes['gke_deployer.image']],
      ['web', 'ready', 'trace-1', `${REPO}:1.0.0`],
    );
    assert.equal(spans.find((s) => s.name === 'lookup')!.span.attributes['gke_deployer.cluster'], 'projects/sandbox-project/locations/europe-west1/clusters/sandbox');
    assert.equal(spans.find((s) => s.name === 'wait')!.span.attributes['gke_deployer.state'], 'ready');
    assert.equal(spans.find((s) => s.name === 'report')!.span.attributes['gke_deployer.reporters'], 'chat');
    // Every stage within the deploy's time.
    for (const { span } of spans) assert.ok(span.ended && span.duration[0] >= 0);
  });

  test('a rollback is a span of its own, after the failed wait; the failure is on the deploy span as its status attribute', async () => {
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-pull-trace`, eventId: 'trace-2' }, { traceparent: `00-${trace}-${CALLER_SPAN}-01` });
    assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
    const spans = spansOf(trace);
    // Warm: the cluster's endpoint and the token are cached, so no lookup and no token.
    assert.deepEqual(spans.map((s) => `${s.parent ?? '-'} > ${s.name}`).sort(), ['caller > deploy', 'deploy > apply', 'deploy > report', 'deploy > rollback', 'deploy > wait']);
    const wait = spans.find((s) => s.name === 'wait')!.span;
    const rollback = spans.find((s) => s.name === 'rollback')!.span;
    assert.equal(wait.attributes['gke_deployer.state'], 'failed');
    assert.match(String(rollback.attributes['gke_deployer.reason']), /ImagePullBackOff/);
    // In whole nanoseconds (seconds × 1e9 as a float loses them), with 1 ms for OpenTelemetry's
    // float hrtime (timeOrigin + performance.now()): failed once in CI by less than that.
    const ns = (t: [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
    assert.ok(ns(rollback.startTime) + 1_000_000n >= ns(wait.endTime), 'the rollback starts once the wait ended');
    assert.equal(spans.find((s) => s.name === 'deploy')!.span.attributes['gke_deployer.status'], 'rolled-back');
  });

  test('without a caller\'s trace, a deploy starts a trace of its own', async () => {
    const before = new Set(exporter.getFinishedSpans().map((s) => s.spanContext().traceId));
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.1`, eventId: 'trace-3' });
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    const fresh = exporter.getFinishedSpans().filter((s) => !before.has(s.spanContext().traceId));
    const roots = fresh.filter((s) => s.parentSpanContext === undefined);
    assert.deepEqual(roots.map((s) => s.name), ['deploy']);
    assert.ok(fresh.every((s) => s.spanContext().traceId === roots[0]!.spanContext().traceId));
  });
});
