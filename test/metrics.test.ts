// Metrics are log-based (deploy/gcloud/monitoring/, created by setup.sh): each counts or
// measures the deploy log line. This checks them against the lines a real deploy writes:
// which lines each filter selects, and what its labels and value extract. The filters are
// kept to a conjunction of `jsonPayload.F:*` and `jsonPayload.F="v"` (plus the Cloud Run
// resource), which is what this evaluates; a filter of any other form fails here.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { namespace, useSandboxEnv } from './support/sandbox.ts';

const DIR = path.resolve(import.meta.dirname, '../deploy/gcloud/monitoring');
type Line = RunningFunction['logs'][number];

interface LogMetric {
  filter: string;
  labelExtractors?: Record<string, string>;
  valueExtractor?: string;
  metricDescriptor: { valueType: string; labels?: { key: string }[] };
}

const metrics = Object.fromEntries(
  readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml') && !f.startsWith('alert-'))
    .map((f) => [f.replace(/\.yaml$/, ''), parse(readFileSync(path.join(DIR, f), 'utf8')) as LogMetric]),
);

/** The filter as terms on jsonPayload; throws on anything else. */
function terms(filter: string): { field: string; equals?: string }[] {
  const parts = filter.replace(/\s+/g, ' ').trim().split(' AND ');
  assert.deepEqual(parts.slice(0, 2), ['resource.type="cloud_run_revision"', 'resource.labels.service_name="${SERVICE}"']);
  return parts.slice(2).map((p) => {
    const m = /^jsonPayload\.(\w+)(?::\*|="([^"]*)")$/.exec(p);
    assert.ok(m, `a term this test cannot evaluate: ${p}`);
    return { field: m[1]!, ...(m[2] !== undefined && { equals: m[2] }) };
  });
}

const selects = (filter: string) => (line: Line) => terms(filter).every((t) => (t.equals === undefined ? line[t.field] !== undefined : line[t.field] === t.equals));
const extract = (extractor: string, line: Line) => {
  const m = /^EXTRACT\(jsonPayload\.(\w+)\)$/.exec(extractor);
  assert.ok(m, extractor);
  return line[m[1]!];
};

describe('log-based metrics, against the lines real deploys write', () => {
  let fn: RunningFunction;
  let lines: Line[];

  before(async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('metrics');
    fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }), { 'web.yaml': fixture('manifests/web.yaml') });
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` })).body.status, 'ready');
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-pull-metrics` })).body.status, 'rolled-back');
    assert.equal((await fn.post('/deploy', { target: 'web', image: 'elsewhere.example/app:1' })).status, 403);
    assert.equal((await fn.post('/deploy', { target: 'nowhere', image: `${REPO}:1.0.0` })).status, 404);
    lines = fn.logs;
  });
  after(() => fn?.close());

  test('deploys: one per deploy, labelled with target, cluster and status; never a request\'s own line', () => {
    const m = metrics.deploys!;
    const counted = lines.filter(selects(m.filter));
    assert.deepEqual(
      counted.map((l) => Object.fromEntries(Object.entries(m.labelExtractors!).map(([k, e]) => [k, extract(e, l)]))),
      [
        { target: 'web', cluster: 'sandbox', status: 'ready' },
        { target: 'web', cluster: 'sandbox', status: 'rolled-back' },
        { target: 'web', cluster: undefined, status: 'error' },
        { target: 'nowhere', cluster: undefined, status: 'error' },
      ],
    );
    assert.deepEqual(m.metricDescriptor.labels?.map((l) => l.key).sort(), Object.keys(m.labelExtractors!).sort());
  });

  test('deploy-duration: each deploy\'s elapsedMs; time-to-ready: the ready one\'s readyMs, within it', () => {
    const durations = lines.filter(selects(metrics['deploy-duration']!.filter)).map((l) => extract(metrics['deploy-duration']!.valueExtractor!, l));
    assert.equal(durations.length, 2);
    assert.ok(durations.every((d) => typeof d === 'number' && d > 0), JSON.stringify(durations));
    const ready = lines.filter(selects(metrics['time-to-ready']!.filter));
    assert.equal(ready.length, 1);
    const readyMs = extract(metrics['time-to-ready']!.valueExtractor!, ready[0]!);
    assert.ok(typeof readyMs === 'number' && readyMs > 0 && readyMs <= (ready[0]!.elapsedMs as number), `${String(readyMs)} of ${String(ready[0]!.elapsedMs)}`);
  });

  test('rollbacks: only the rolled-back deploy; the alert policy watches that metric', () => {
    const rolledBack = lines.filter(selects(metrics.rollbacks!.filter));
    assert.deepEqual(rolledBack.map((l) => [l.target, l.cluster, l.status]), [['web', 'sandbox', 'rolled-back']]);
    const alert = parse(readFileSync(path.join(DIR, 'alert-rollbacks.yaml'), 'utf8')) as { conditions: { conditionThreshold: { filter: string } }[] };
    assert.match(alert.conditions[0]!.conditionThreshold.filter, /^metric\.type="logging\.googleapis\.com\/user\/gke-deployer\/rollbacks"/);
  });
});
