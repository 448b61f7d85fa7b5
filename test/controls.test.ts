// Production controls through the sandbox (issue 20): deploy windows and approvals hold a deploy
// in the target's namespace, a /scheduler call or /approve releases it, a newer intent supersedes
// an older held one, break-glass overrides a window for listed callers only, and a release that
// was rolled back is quarantined until another release deploys. Time is the function's injected
// clock (DEPLOYER_CLOCK_FILE), moved by the test, never slept.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { exists, idToken, kubectl, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { closeHold, readHold, writeHold } from '../src/control/holds.ts';
import type { DeployError } from '../src/errors.ts';
import { startChatWebhook, type ChatWebhook } from './support/chat-webhook.ts';

const DIRECT = 'https://gke-deployer.example.run.app/deploy';
const SCHEDULER = 'https://gke-deployer.example.run.app/scheduler';
const APPROVE = 'https://gke-deployer.example.run.app/approve';
const GCLOUD = '32555940559.apps.googleusercontent.com';
const CI = 'ci@sandbox-project.iam.gserviceaccount.com';
const OPS = 'ops@sandbox-project.iam.gserviceaccount.com';
const SCHED = 'scheduler@sandbox-project.iam.gserviceaccount.com';
const ALICE = 'alice@example.com';
/** Inside the freeze (a one-time deny window around Christmas Eve, Berlin time). */
const FROZEN = '2026-12-24T12:00:00Z';
const THAWED = '2026-12-27T12:00:00Z';

interface ConfigMap {
  data: Record<string, string>;
  metadata: { labels: Record<string, string> };
}

/** How the target's hold record stands: `held`, or how it was closed (`released`, `rejected`, `expired`); undefined: never held. */
async function holdState(ns: string, target: string): Promise<string | undefined> {
  if (!(await exists('configmap', `gke-deployer-hold-${target}`, ns))) return undefined;
  const cm = await kubectlJson<ConfigMap>(['-n', ns, 'get', 'configmap', `gke-deployer-hold-${target}`]);
  return cm.data.state ?? 'held';
}

async function image(ns: string): Promise<string | undefined> {
  if (!(await exists('deployment', 'web', ns))) return undefined;
  const d = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'web']);
  return d.spec.template.spec.containers[0]?.image;
}

describe('production controls', () => {
  let fn: RunningFunction;
  let chat: ChatWebhook;
  let clockFile: string;
  const ns: Record<string, string> = {};
  const bearer = async (audience: string, email: string) => ({ authorization: `Bearer ${await idToken({ audience, email })}` });
  let ci: Record<string, string>;
  let sched: Record<string, string>;
  const setClock = (iso: string) => writeFileSync(clockFile, iso);
  const logOf = (eventId: string, status: string) => fn.logs.find((l) => l.eventId === eventId && l.status === status);

  before(async () => {
    const info = await useSandboxEnv();
    for (const t of ['frozen', 'superseded', 'glass', 'gated', 'rejected', 'expiring', 'quarantine']) ns[t] = await namespace(t.slice(0, 6));
    clockFile = path.join(await mkdtemp(path.join(tmpdir(), 'clock-')), 'now');
    setClock(FROZEN);
    const approval = { approvers: [ALICE], expireAfter: '1h' };
    chat = await startChatWebhook('/v1/spaces/CONTROLS/messages?key=k&token=t');
    // Read when the configuration is loaded, as on Cloud Run.
    process.env.TEST_CONTROLS_CHAT_URL = chat.url;
    fn = await startFunction(
      configYaml({
        auth: {
          direct: { audience: DIRECT, serviceAccounts: [CI, OPS], breakGlass: [OPS] },
          scheduler: { audience: SCHEDULER, serviceAccounts: [SCHED] },
          approve: { audience: APPROVE },
          certsUrl: info.certsUrl,
        },
        windows: { freeze: { deny: [{ start: '2026-12-23T00:00:00', end: '2026-12-26T00:00:00', timeZone: 'Europe/Berlin' }] } },
        clusters: { sandbox: gkeCluster(info) },
        targets: {
          frozen: webTarget(ns.frozen!, { windows: ['freeze'] }),
          superseded: webTarget(ns.superseded!, { windows: ['freeze'] }),
          glass: webTarget(ns.glass!, { windows: ['freeze'] }),
          gated: webTarget(ns.gated!, { approval }),
          rejected: webTarget(ns.rejected!, { approval }),
          expiring: webTarget(ns.expiring!, { approval }),
          quarantine: webTarget(ns.quarantine!, { rollout: { timeout: '60s' } }),
        },
        report: { chat: { webhookEnv: 'TEST_CONTROLS_CHAT_URL' } },
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
      { DEPLOYER_CLOCK_FILE: clockFile },
    );
    ci = await bearer(DIRECT, CI);
    sched = await bearer(SCHEDULER, SCHED);
  });
  after(async () => {
    await fn?.close();
    await chat?.close();
  });

  test('a deny window holds the deploy in the namespace; once it opens, the /scheduler call deploys it', async () => {
    setClock(FROZEN);
    const held = await fn.post('/deploy', { target: 'frozen', image: `${REPO}:1.0.0`, eventId: 'freeze-1' }, ci);
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.equal(held.body.status, 'held');
    assert.match(String(held.body.reason), /window "freeze" denies deploys now/);
    assert.equal((held.body.hold as { eventId: string }).eventId, 'freeze-1');
    assert.equal(await image(ns.frozen!), undefined, 'nothing deployed while held');
    // Readable with kubectl: the event, the image and why.
    const cm = await kubectlJson<ConfigMap>(['-n', ns.frozen!, 'get', 'configmap', 'gke-deployer-hold-frozen']);
    assert.deepEqual([cm.data.eventId, cm.data.image, cm.metadata.labels['gke-deployer/hold']], ['freeze-1', `${REPO}:1.0.0`, 'frozen']);
    assert.match(cm.data.reason!, /denies deploys now/);

    // Still frozen: the Scheduler job reconciles (nothing deployed yet) and the hold stays.
    const early = await fn.post('/scheduler', { target: 'frozen' }, sched);
    assert.equal((early.body.error as { code?: string } | undefined)?.code, 'NOT_DEPLOYED', JSON.stringify(early.body));
    assert.equal(await holdState(ns.frozen!, 'frozen'), 'held');

    setClock(THAWED);
    const released = await fn.post('/scheduler', { target: 'frozen' }, sched);
    assert.equal(released.status, 200, JSON.stringify(released.body));
    assert.deepEqual([released.body.status, released.body.image], ['ready', `${REPO}:1.0.0`]);
    assert.equal(await image(ns.frozen!), `${REPO}:1.0.0`);
    assert.equal(await holdState(ns.frozen!, 'frozen'), 'released', 'the hold is closed once deployed');
    // The next Scheduler call is a plain reconcile again.
    const again = await fn.post('/scheduler', { target: 'frozen' }, sched);
    assert.deepEqual([again.status, again.body.reconciled], [200, true]);
  });

  test('a newer held intent replaces the older one, which is reported superseded; an older one coming late is superseded itself', async () => {
    setClock(FROZEN);
    const t = Date.now();
    const first = await fn.post('/deploy', { target: 'superseded', image: `${REPO}:1.0.0`, eventId: 'sup-1', eventTime: new Date(t - 60_000).toISOString() }, ci);
    assert.equal(first.body.status, 'held', JSON.stringify(first.body));
    const second = await fn.post('/deploy', { target: 'superseded', image: `${REPO}:1.0.1`, eventId: 'sup-2', eventTime: new Date(t - 30_000).toISOString() }, ci);
    assert.equal(second.body.status, 'held', JSON.stringify(second.body));
    assert.equal(logOf('sup-1', 'superseded')?.severity, 'INFO', 'the replaced intent is reported superseded');
    const late = await fn.post('/deploy', { target: 'superseded', image: `${REPO}:0.9.0`, eventId: 'sup-0', eventTime: new Date(t - 90_000).toISOString() }, ci);
    assert.equal(late.status, 409, JSON.stringify(late.body));
    assert.equal(late.body.status, 'superseded');
    const cm = await kubectlJson<ConfigMap>(['-n', ns.superseded!, 'get', 'configmap', 'gke-deployer-hold-superseded']);
    assert.deepEqual([cm.data.eventId, cm.data.image], ['sup-2', `${REPO}:1.0.1`]);
    // The same event again (a redelivery) is held as it is.
    const redelivered = await fn.post('/deploy', { target: 'superseded', image: `${REPO}:1.0.1`, eventId: 'sup-2', eventTime: new Date(t - 30_000).toISOString() }, ci);
    assert.deepEqual([redelivered.status, redelivered.body.status], [202, 'held']);
  });

  test('break-glass: a caller in auth.direct.breakGlass deploys through a closed window, logged at WARNING; another caller is refused', async () => {
    setClock(FROZEN);
    const refused = await fn.post('/deploy', { target: 'glass', image: `${REPO}:1.0.0`, override: 'incident 42' }, ci);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal((refused.body.error as { code: string }).code, 'FORBIDDEN');
    assert.equal(await image(ns.glass!), undefined);

    const res = await fn.post('/deploy', { target: 'glass', image: `${REPO}:1.0.0`, override: 'incident 42' }, await bearer(DIRECT, OPS));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.deepEqual(res.body.override, { by: OPS, reason: 'incident 42' });
    assert.equal(await image(ns.glass!), `${REPO}:1.0.0`);
    const warning = fn.logs.find((l) => l.severity === 'WARNING' && /overridden by/.test(l.message));
    assert.ok(warning, 'a WARNING names the caller and the reason');
    assert.match(warning.message, new RegExp(`${OPS}: incident 42`));
  });

  test('approval: held with its eventId until an approver approves with a gcloud user token; someone else is refused', async () => {
    setClock(FROZEN);
    const held = await fn.post('/deploy', { target: 'gated', image: `${REPO}:1.0.0`, eventId: 'gate-1' }, ci);
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.match(String(held.body.reason), /awaits approval by one of alice@example.com/);
    const hold = held.body.hold as { eventId: string; expiresAt: string };
    assert.deepEqual([hold.eventId, hold.expiresAt], ['gate-1', '2026-12-24T13:00:00.000Z']);

    const bob = await fn.post('/approve', { target: 'gated', eventId: 'gate-1' }, await bearer(GCLOUD, 'bob@example.com'));
    assert.equal(bob.status, 403, JSON.stringify(bob.body));
    // A service account may not use gcloud's audience: only the configured one.
    const sa = await fn.post('/approve', { target: 'gated', eventId: 'gate-1' }, await bearer(GCLOUD, CI));
    assert.equal(sa.status, 401, JSON.stringify(sa.body));
    const wrongEvent = await fn.post('/approve', { target: 'gated', eventId: 'gate-0' }, await bearer(GCLOUD, ALICE));
    assert.equal(wrongEvent.status, 404, JSON.stringify(wrongEvent.body));
    assert.equal(await image(ns.gated!), undefined);

    const approved = await fn.post('/approve', { target: 'gated', eventId: 'gate-1' }, await bearer(GCLOUD, ALICE));
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.deepEqual([approved.body.status, approved.body.image], ['ready', `${REPO}:1.0.0`]);
    assert.equal(await image(ns.gated!), `${REPO}:1.0.0`);
    assert.equal(await holdState(ns.gated!, 'gated'), 'released');
  });

  test('rejection: nothing deployed, reported rejected, and the hold is closed', async () => {
    setClock(FROZEN);
    const held = await fn.post('/deploy', { target: 'rejected', image: `${REPO}:1.0.0`, eventId: 'rej-1' }, ci);
    assert.equal(held.body.status, 'held', JSON.stringify(held.body));
    const alice = await bearer(APPROVE, ALICE);
    const rejected = await fn.post('/reject', { target: 'rejected', eventId: 'rej-1' }, alice);
    assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
    assert.deepEqual([rejected.body.status, rejected.body.reason], ['rejected', `rejected by ${ALICE}`]);
    assert.ok(logOf('rej-1', 'rejected'), 'reported as that intent\'s end');
    assert.equal(await holdState(ns.rejected!, 'rejected'), 'rejected');
    assert.equal(await image(ns.rejected!), undefined);
    const late = await fn.post('/approve', { target: 'rejected', eventId: 'rej-1' }, alice);
    assert.equal((late.body.error as { code: string }).code, 'HOLD_NOT_FOUND');
  });

  test('expiry: a hold nobody approves is dropped by the next /scheduler call after expireAfter, reported expired', async () => {
    setClock(FROZEN);
    const held = await fn.post('/deploy', { target: 'expiring', image: `${REPO}:1.0.0`, eventId: 'exp-1' }, ci);
    assert.equal(held.body.status, 'held', JSON.stringify(held.body));
    setClock('2026-12-24T13:00:01Z');
    const tick = await fn.post('/scheduler', { target: 'expiring' }, sched);
    assert.equal((tick.body.error as { code?: string } | undefined)?.code, 'NOT_DEPLOYED', JSON.stringify(tick.body));
    assert.equal(logOf('exp-1', 'expired')?.severity, 'WARNING');
    assert.equal(await holdState(ns.expiring!, 'expiring'), 'expired');
    const late = await fn.post('/approve', { target: 'expiring', eventId: 'exp-1' }, await bearer(APPROVE, ALICE));
    assert.equal(late.status, 404, JSON.stringify(late.body));
    assert.equal(await image(ns.expiring!), undefined);
  });

  test('quarantine: a rolled-back release is refused until another release deploys successfully; force deploys it', async () => {
    const good = await fn.post('/deploy', { target: 'quarantine', image: `${REPO}:1.0.0` }, ci);
    assert.equal(good.body.status, 'ready', JSON.stringify(good.body));
    const bad = `${REPO}:fail-pull-q1`;
    const failed = await fn.post('/deploy', { target: 'quarantine', image: bad, eventId: 'q-cb' }, ci);
    assert.equal(failed.body.status, 'rolled-back', JSON.stringify(failed.body));

    // The same image again from another event (Artifact Registry after Cloud Build): refused, nothing written.
    const again = await fn.post('/deploy', { target: 'quarantine', image: bad, eventId: 'q-ar' }, ci);
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.status, 'quarantined');
    assert.match(String(again.body.reason), /was rolled back \(event q-cb\)/);
    assert.equal(await image(ns.quarantine!), `${REPO}:1.0.0`);

    // A different release deploys: the quarantine is lifted, and the bad image is tried (and rolled back) again.
    const next = await fn.post('/deploy', { target: 'quarantine', image: `${REPO}:1.0.1` }, ci);
    assert.equal(next.body.status, 'ready', JSON.stringify(next.body));
    const retried = await fn.post('/deploy', { target: 'quarantine', image: bad, eventId: 'q-again' }, ci);
    assert.equal(retried.body.status, 'rolled-back', JSON.stringify(retried.body));
    // Quarantined once more; force lets a person deploy it anyway.
    const refused = await fn.post('/deploy', { target: 'quarantine', image: bad, eventId: 'q-again-2' }, ci);
    assert.equal(refused.body.status, 'quarantined');
    const forced = await fn.post('/deploy', { target: 'quarantine', image: bad, eventId: 'q-forced', force: true }, ci);
    assert.equal(forced.body.status, 'rolled-back', JSON.stringify(forced.body));
  });

  test('chat: a message for each held, superseded, rejected, expired and quarantined outcome, with its reason', () => {
    const texts = chat.posts.map((p) => (p.body as { text: string }).text);
    const headed = (head: string) => texts.filter((t) => t.startsWith(`${head}`));
    assert.equal(headed('*frozen: held*').length, 1);
    assert.deepEqual(headed('*frozen: ready*').map((t) => /image: (.*)/.exec(t)?.[1]), [`\`${REPO}:1.0.0\``, `\`${REPO}:1.0.0\``], 'the release once deployed, then the plain reconcile');
    assert.equal(headed('*superseded: held*').length, 3, 'sup-1, sup-2 and its redelivery');
    assert.equal(headed('*superseded: superseded*').length, 2, 'sup-1 replaced, sup-0 too old');
    assert.match(headed('*superseded: superseded*')[0]!, /reason: replaced by the newer event sup-2/);
    assert.match(headed('*gated: held*')[0]!, /reason: awaits approval by one of alice@example\.com \(POST \/approve\)/);
    assert.match(headed('*rejected: rejected*')[0]!, /reason: rejected by alice@example\.com/);
    assert.equal(headed('*expiring: expired*').length, 1);
    assert.equal(headed('*quarantine: quarantined*').length, 2);
    assert.equal(headed('*quarantine: rolled-back*').length, 3);
  });
});

describe('hold records: every change is conditional on what was read', () => {
  test('a replace or close written against a record someone changed since is refused and changes nothing; closed, it reads as no hold', async (t) => {
    const info = await useSandboxEnv();
    const ns = await namespace('holdcas');
    const registry = new ClusterRegistry(new Map([['c', { kubeconfig: { path: info.kubeconfig } }]]));
    t.after(() => registry.close());
    const client = await registry.client('c');
    const intent = { target: 'web', image: `${REPO}:1.0.0`, dryRun: false, requestId: 'r1', source: 'direct', eventId: 'e1', eventTime: '2026-12-01T00:00:00Z' };
    const hold = { intent, reason: 'held for a test', heldAt: '2026-12-01T00:00:00Z' };
    assert.equal(await writeHold(client, hold, ns), true);
    assert.equal(await writeHold(client, hold, ns), false, 'a second create finds it there');
    const read = await readHold(client, 'web', ns);
    assert.deepEqual(read?.hold, hold);
    // Another instance replaces it meanwhile.
    assert.equal(await writeHold(client, { ...hold, intent: { ...intent, eventId: 'e2' } }, ns, read.live), true);
    assert.equal(await writeHold(client, { ...hold, intent: { ...intent, eventId: 'e3' } }, ns, read.live), false);
    assert.equal(await closeHold(client, read.live, 'released', '2026-12-01T00:01:00Z'), false);
    const now = await readHold(client, 'web', ns);
    assert.equal(now?.hold?.intent.eventId, 'e2');
    assert.equal(await closeHold(client, now.live, 'rejected', '2026-12-01T00:02:00Z'), true);
    assert.equal((await readHold(client, 'web', ns))?.hold, undefined);
    // A hand-edited record is refused, not acted on.
    await kubectl(['-n', ns, 'patch', 'configmap', 'gke-deployer-hold-web', '--type=merge', '-p', '{"data":{"state":null,"intent":"{}","reason":"x","heldAt":"2026-12-01T00:00:00Z"}}']);
    await assert.rejects(readHold(client, 'web', ns), (err: DeployError) => err.code === 'HOLD_INVALID');
  });
});
