// The sandbox's fake node (kwok) through the shared sandbox's real control plane: the
// failure convention by image tag (sandbox/kube/kwok-stages.yaml) as the real Job and
// Deployment controllers see it, and pod logs served by kwok's kubelet API through the
// apiserver (sandbox/kube/logs.ts).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { CONTAINER_LOG_LINES } from '../../sandbox/kube/logs.ts';
import { kubectl, kubectlJson, namespace, sandbox } from '../support/sandbox.ts';

const IMAGE = 'registry.example/app';
/** A manifest digest, for pinned images. */
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

interface ContainerState {
  waiting?: { reason?: string };
  running?: Record<string, unknown>;
  terminated?: { exitCode: number; reason?: string };
}
interface Pod {
  metadata: { name: string; finalizers?: string[] };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount: number; state?: ContainerState; lastState?: ContainerState }[];
  };
}
interface Job {
  status: { failed?: number; succeeded?: number; conditions?: { type: string; status: string; reason?: string }[] };
}

function jobManifest(ns: string, name: string, tag: string, backoffLimit: number): string {
  return JSON.stringify({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: ns },
    spec: {
      backoffLimit,
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: `${IMAGE}:${tag}` }] } },
    },
  });
}

function podManifest(ns: string, name: string, restartPolicy: string, images: string[]): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: { restartPolicy, containers: images.map((image, i) => ({ name: `c${i}`, image })) },
  });
}

const jobPods = async (ns: string, job: string) =>
  (await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', '-l', `job-name=${job}`])).items;

/** GET on the apiserver as admin, verifying it against the sandbox CA. */
async function apiGet(p: string): Promise<{ status: number; body: string }> {
  const info = await sandbox();
  const kubeconfig = parse(await readFile(info.kubeconfig, 'utf8')) as { users: { user: { token: string } }[] };
  const ca = await readFile(info.caFile, 'utf8');
  const token = kubeconfig.users[0]?.user.token ?? '';
  return new Promise((resolve, reject) => {
    https
      .get(info.server + p, { ca, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('sandbox kwok node: failure stages and logs', { timeout: 180_000 }, () => {
  let ns: string;
  before(async () => {
    ns = await namespace('kwok');
  });

  test('a Job with a fail-exit* image fails: new Pods until backoffLimit, then BackoffLimitExceeded', async () => {
    await kubectl(['apply', '-f', '-'], jobManifest(ns, 'exits', 'fail-exit', 1));
    // The Job controller waits ~10s (its pod failure backoff) before the second Pod.
    await kubectl(['-n', ns, 'wait', '--for=condition=Failed', 'job/exits', '--timeout=90s']);
    const job = await kubectlJson<Job>(['-n', ns, 'get', 'job', 'exits']);
    const failed = job.status.conditions?.find((c) => c.type === 'Failed');
    assert.equal(failed?.status, 'True');
    assert.equal(failed?.reason, 'BackoffLimitExceeded');
    assert.equal(job.status.failed, 2); // backoffLimit 1: the first Pod and one retry
    const pods = await jobPods(ns, 'exits');
    assert.equal(pods.length, 2);
    for (const pod of pods) {
      assert.equal(pod.status.phase, 'Failed', pod.metadata.name);
      const ended = pod.status.containerStatuses?.map((c) => [c.state?.terminated?.exitCode, c.state?.terminated?.reason]);
      assert.deepEqual(ended, [[1, 'Error']], pod.metadata.name);
      // The Job controller counted the Pod, so it dropped its tracking finalizer.
      assert.ok(!pod.metadata.finalizers?.includes('batch.kubernetes.io/job-tracking'), pod.metadata.name);
    }
  });

  test('a Job with any other tag completes with exit code 0', async () => {
    await kubectl(['apply', '-f', '-'], jobManifest(ns, 'works', 'v1', 1));
    await kubectl(['-n', ns, 'wait', '--for=condition=Complete', 'job/works', '--timeout=60s']);
    const job = await kubectlJson<Job>(['-n', ns, 'get', 'job', 'works']);
    assert.equal(job.status.succeeded, 1);
    assert.equal(job.status.failed ?? 0, 0);
    const [pod, ...rest] = await jobPods(ns, 'works');
    assert.equal(rest.length, 0);
    assert.equal(pod?.status.phase, 'Succeeded');
    assert.equal(pod?.status.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
  });

  test("the apiserver serves a failed Job Pod's log from kwok's kubelet API (tailLines, kubectl logs)", async () => {
    const [pod] = await jobPods(ns, 'exits');
    assert.ok(pod, 'the failed Job has Pods (run with the Job test above)');
    const path = `/api/v1/namespaces/${ns}/pods/${pod.metadata.name}/log`;
    const lines = (n: number) => CONTAINER_LOG_LINES.slice(-n).join('\n') + '\n';

    const tail = await apiGet(`${path}?tailLines=3`);
    assert.equal(tail.status, 200, tail.body);
    assert.equal(tail.body, lines(3));
    assert.match(tail.body, /fail-exit\*: it exits with code 1/);
    const all = await apiGet(path);
    assert.equal(all.body, lines(CONTAINER_LOG_LINES.length));
    assert.ok(CONTAINER_LOG_LINES.length >= 5);

    assert.equal(await kubectl(['-n', ns, 'logs', pod.metadata.name, '--tail=3']), lines(3));
    assert.equal(await kubectl(['-n', ns, 'logs', 'job/exits', '--tail=1']), lines(1));
    // A succeeded Pod is served too (the same log: kwok cannot pick one by image).
    assert.equal(await kubectl(['-n', ns, 'logs', 'job/works', '--tail=2']), lines(2));
  });

  test('a Deployment with a fail-exit* image crash-loops with last exit code 1', async () => {
    await kubectl(['-n', ns, 'create', 'deployment', 'exits', `--image=${IMAGE}:fail-exit-2`]);
    await kubectl([
      '-n', ns, 'wait', 'pod', '-l', 'app=exits', '--timeout=60s',
      '--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=CrashLoopBackOff',
    ]);
    const [pod, ...rest] = (await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', '-l', 'app=exits'])).items;
    assert.equal(rest.length, 0);
    assert.equal(pod?.status.phase, 'Running');
    assert.equal(pod?.status.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
    const status = pod?.status.containerStatuses?.[0];
    assert.equal(status?.restartCount, 1);
    assert.equal(status?.lastState?.terminated?.exitCode, 1);
    assert.equal(status?.lastState?.terminated?.reason, 'Error');
    // The crashed run's log, as a deployer would ask for it.
    assert.equal(await kubectl(['-n', ns, 'logs', pod?.metadata.name ?? '', '--previous', '--tail=1']), CONTAINER_LOG_LINES.slice(-1).join('') + '\n');
  });

  test('the failure stages stay exclusive: each kind of Pod ends the same way every time', async () => {
    // Expected: the Pod phase, and per container its waiting reason or else its state.
    const cases: { name: string; policy: string; images: string[]; phase: string; states: string[] }[] = [];
    const add = (name: string, policy: string, tags: string[], phase: string, states: string[]) =>
      cases.push({ name, policy, images: tags.map((t) => `${IMAGE}:${t}`), phase, states });
    const seen = (p: Pod) => [
      p.status.phase,
      p.status.containerStatuses?.map((c) => c.state?.waiting?.reason ?? Object.keys(c.state ?? {})[0]),
    ];
    // Three of each: kwok picks at random among matching stages, so an overlap would show.
    for (const i of [1, 2, 3]) {
      add(`pull-${i}`, 'Always', ['fail-pull-2'], 'Pending', ['ImagePullBackOff']);
      add(`crash-${i}`, 'Always', ['crash'], 'Running', ['CrashLoopBackOff']);
      add(`crash-never-${i}`, 'Never', ['crash-1'], 'Running', ['CrashLoopBackOff']);
      add(`exit-never-${i}`, 'Never', ['fail-exit', 'v1'], 'Failed', ['terminated', 'terminated']);
      add(`exit-onfailure-${i}`, 'OnFailure', ['fail-exit'], 'Running', ['CrashLoopBackOff']);
      add(`pull-wins-${i}`, 'Never', ['fail-exit', 'fail-pull'], 'Pending', ['running', 'ImagePullBackOff']);
      add(`crash-wins-${i}`, 'Never', ['fail-exit', 'crash'], 'Running', ['CrashLoopBackOff', 'CrashLoopBackOff']);
      // Only a tag that STARTS with the word counts.
      add(`ready-${i}`, 'Always', ['v1-crash', 'failpull', 'v2-fail-exit'], 'Running', ['running', 'running', 'running']);
      // Pinned images (TAG@sha256:…, as the deployer writes them) keep their tag's meaning.
      add(`pinned-pull-${i}`, 'Always', [`fail-pull-x@${DIGEST}`], 'Pending', ['ImagePullBackOff']);
      add(`pinned-crash-${i}`, 'Always', [`crash@${DIGEST}`], 'Running', ['CrashLoopBackOff']);
      add(`pinned-exit-${i}`, 'Never', [`fail-exit-2@${DIGEST}`, `v1@${DIGEST}`], 'Failed', ['terminated', 'terminated']);
      add(`pinned-ready-${i}`, 'Always', [`v1@${DIGEST}`], 'Running', ['running']);
      // A registry with a port, as the sandbox's own (HOST:PORT/REPO/NAME:TAG@sha256:…).
      cases.push({ name: `pinned-port-pull-${i}`, policy: 'Always', images: [`127.0.0.1:5000/repo/app:fail-pull-x@${DIGEST}`], phase: 'Pending', states: ['ImagePullBackOff'] });
    }
    await kubectl(['apply', '-f', '-'], cases.map((c) => podManifest(ns, c.name, c.policy, c.images)).join('\n'));
    // Each Pod is settled once kwok gave it an IP (every stage sets one).
    await kubectl(['-n', ns, 'wait', ...cases.map((c) => `pod/${c.name}`), '--timeout=60s', '--for=jsonpath={.status.podIP}']);
    const pods = new Map(
      (await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', ...cases.map((c) => c.name)])).items.map((p) => [p.metadata.name, p]),
    );
    for (const c of cases) {
      const pod = pods.get(c.name);
      assert.ok(pod, c.name);
      assert.deepEqual(seen(pod), [c.phase, c.states], `${c.name} (${c.policy}, ${c.images.join(' ')})`);
    }
    const exit = pods.get('exit-never-1')?.status.containerStatuses?.map((s) => [s.name, s.state?.terminated?.exitCode, s.state?.terminated?.reason]);
    assert.deepEqual(exit, [['c0', 1, 'Error'], ['c1', 0, 'Completed']]);
  });
});
