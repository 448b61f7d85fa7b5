// deploy/gcloud/setup.sh against a gcloud stub that knows exactly the commands and flags of
// the Google Cloud CLI installed on this machine (its captured --help), records every call
// and keeps what was created: every flag exists, the identities get only their roles (and
// those roles carry the permissions the deployer needs, by IAM's documented role contents),
// every API the steps use is enabled, the subscription and the Scheduler job are shaped as
// documented, a second run creates nothing, a changed config rolls a new revision, and
// NETWORK gives the service Direct VPC egress.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { checkCall, gcloudCommands, type Call } from './support/gcloud-help.ts';
import { PROJECT_NUMBER, installGcloudStub, readState, type StubState } from './support/gcloud-stub.ts';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(root, 'deploy/gcloud/setup.sh');
const PROJECT = 'my-proj-1234';
const REGION = 'europe-west4';
const URL = `https://gke-deployer-${PROJECT_NUMBER}.${REGION}.run.app`;
const sa = (name: string) => `serviceAccount:${name}@${PROJECT}.iam.gserviceaccount.com`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: Call[];
  state: StubState;
}

async function setup(dir: string, env: Record<string, string>): Promise<Run> {
  const stateFile = path.join(dir, 'state.json');
  const before = (await readFile(stateFile, 'utf8').then((t) => (JSON.parse(t) as StubState).calls.length).catch(() => 0));
  installGcloudStub(dir, stateFile);
  const res = await exec('bash', [SCRIPT], {
    env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir, PROJECT, REGION, RETRY_DELAY_SECONDS: '0', ...env },
  }).then(
    (r) => ({ code: 0, ...r }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
  const state = readState(stateFile);
  return { ...res, state, calls: state.calls.slice(before) };
}

const named = (calls: Call[], command: string) => calls.filter((c) => c.command.join(' ') === command);
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

/** The secrets setup.sh manages: the config (a volume) and those service.yaml takes as env vars. */
function shellArray(name: string): string[] {
  const m = new RegExp(`^${name}=\\(([^)]*)\\)`, 'm').exec(readFileSync(SCRIPT, 'utf8'));
  assert.ok(m, `setup.sh sets ${name}`);
  return m[1]!.split(/\s+/);
}
const SECRETS = { config: ['gke-deployer-config'], report: shellArray('REPORT_SECRETS'), env: [...shellArray('WEBHOOK_SECRETS'), ...shellArray('REPORT_SECRETS')] };

/** The predefined roles' permissions, as IAM documents them (`gcloud iam roles describe`). */
const IAM_ROLES = (JSON.parse(readFileSync(path.join(root, 'test/shipping/fixtures/iam-roles.json'), 'utf8')) as { roles: Record<string, { includedPermissions: string[] }> }).roles;

/** The APIs a gcloud command line (its words and flags) calls. A group not listed here fails the test until it is. */
function apisOf(args: string[]): string[] {
  const words = args.filter((a) => !a.startsWith('-'));
  const line = words.join(' ');
  if (line.startsWith('services enable')) return []; // Service Usage: on in every project, it enables the rest
  if (line.startsWith('auth print-identity-token')) return args.some((a) => a.startsWith('--impersonate-service-account')) ? ['iamcredentials.googleapis.com'] : [];
  if (line.startsWith('auth')) return [];
  if (line.startsWith('run services logs')) return ['run.googleapis.com', 'logging.googleapis.com'];
  if (line.startsWith('alpha monitoring')) return ['monitoring.googleapis.com'];
  const api = ({ run: 'run', artifacts: 'artifactregistry', builds: 'cloudbuild', secrets: 'secretmanager', pubsub: 'pubsub', scheduler: 'cloudscheduler', container: 'container', iam: 'iam', storage: 'storage', projects: 'cloudresourcemanager', logging: 'logging', monitoring: 'monitoring' } as Record<string, string>)[words[0] ?? ''];
  assert.ok(api, `which API does "gcloud ${line}" call? (add it to apisOf)`);
  return [`${api}.googleapis.com`];
}

describe('deploy/gcloud/setup.sh', () => {
  let dir: string;
  let first: Run;
  let second: Run;
  let changed: Run;
  let timeoutSeconds: number;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-setup-'));
    await writeFile(path.join(dir, 'deployer.yaml'), 'auth: { direct: none }\n');
    const env = { CONFIG_FILE: path.join(dir, 'deployer.yaml'), TOPICS: 'gcr cloud-builds', RECONCILE_TARGETS: 'web', RELEASE_TARGETS: 'shop', REPORT_TOPIC: 'deploy-results' };
    first = await setup(dir, env);
    second = await setup(dir, env);
    await writeFile(path.join(dir, 'deployer.yaml'), 'auth: { direct: none }\nclusters: {}\n');
    changed = await setup(dir, env);
    const service = parse(await readFile(path.join(root, 'service.yaml'), 'utf8')) as { spec: { template: { spec: { timeoutSeconds: number } } } };
    timeoutSeconds = service.spec.template.spec.timeoutSeconds;
  });

  test('is strict bash and runs to the end twice, with only commands and flags the installed CLI knows', () => {
    for (const run of [first, second]) assert.equal(run.code, 0, run.stderr);
    assert.ok(first.calls.length > 30, `${first.calls.length} calls`);
  });

  test('the stub refuses a flag the CLI does not have, and a switch given a value', () => {
    assert.throws(() => checkCall(['pubsub', 'subscriptions', 'create', 's', '--topic=t', '--push-audience=x']), /unrecognized arguments: --push-audience/);
    assert.throws(() => checkCall(['run', 'deploy', 's', '--no-invoker-iam-check=true']), /switch/);
    assert.throws(() => checkCall(['run', 'services', 'frobnicate', 's']), /unknown command/);
    assert.deepEqual(checkCall(['storage', 'buckets', 'create', 'gs://b', '-b', '--location', 'eu']).flags, { location: 'eu' });
  });

  test('the runtime identity gets roles/container.clusterViewer, roles/artifactregistry.reader, access to its own secrets and publishing to the queue and report topics, nothing else', () => {
    const roles = first.state.bindings.filter((b) => b.split('|')[1] === sa('gke-deployer')).sort();
    assert.deepEqual(roles, [
      `projects:${PROJECT}|${sa('gke-deployer')}|roles/artifactregistry.reader`,
      `projects:${PROJECT}|${sa('gke-deployer')}|roles/container.clusterViewer`,
      `pubsub topics:deploy-results|${sa('gke-deployer')}|roles/pubsub.publisher`,
      `pubsub topics:gke-deployer-queue|${sa('gke-deployer')}|roles/pubsub.publisher`,
      ...[...SECRETS.config, ...SECRETS.env].sort().map((s) => `secrets:${s}|${sa('gke-deployer')}|roles/secretmanager.secretAccessor`),
    ]);
    const deployed = named(first.calls, 'run deploy')[0];
    assert.equal(deployed?.flags['service-account'], `gke-deployer@${PROJECT}.iam.gserviceaccount.com`);
    assert.equal(deployed?.flags['no-invoker-iam-check'], true);
  });

  test('the push and Scheduler identities may invoke the service; the build identity deploys this service only', () => {
    const on = (member: string) => first.state.bindings.filter((b) => b.split('|')[1] === member).sort();
    assert.deepEqual(on(sa('gke-deployer-push')), [`run services:gke-deployer|${sa('gke-deployer-push')}|roles/run.invoker`]);
    assert.deepEqual(on(sa('gke-deployer-scheduler')), [`run services:gke-deployer|${sa('gke-deployer-scheduler')}|roles/run.invoker`]);
    assert.deepEqual(on(sa('gke-deployer-build')), [
      `artifacts repositories:gke-deployer|${sa('gke-deployer-build')}|roles/artifactregistry.writer`,
      `iam service-accounts:gke-deployer@${PROJECT}.iam.gserviceaccount.com|${sa('gke-deployer-build')}|roles/iam.serviceAccountUser`,
      `projects:${PROJECT}|${sa('gke-deployer-build')}|roles/logging.logWriter`,
      `run services:gke-deployer|${sa('gke-deployer-build')}|roles/run.admin`,
      // It pins each env secret of service.yaml to its newest version (render-service.sh).
      ...[...SECRETS.env].sort().map((s) => `secrets:${s}|${sa('gke-deployer-build')}|roles/secretmanager.viewer`),
      `storage buckets:gs://${PROJECT}-gke-deployer-source|${sa('gke-deployer-build')}|roles/storage.objectViewer`,
    ]);
  });

  test('the roles granted carry what the deployer needs, by their documented permissions, and the build may list secret versions but never read one', () => {
    /** The permissions `member` holds on `resource` ("group:name") through the roles granted there. */
    const held = (member: string, resource: string) => {
      const roles = first.state.bindings.filter((b) => b.startsWith(`${resource}|${member}|`)).map((b) => b.split('|')[2]!);
      return new Set(roles.flatMap((r) => {
        const documented = IAM_ROLES[r];
        assert.ok(documented, `${r}'s permissions are in test/shipping/fixtures/iam-roles.json`);
        return documented.includedPermissions;
      }));
    };
    const runtime = sa('gke-deployer');
    // getCluster, and what a `dns` endpoint checks before Kubernetes RBAC (README, GKE endpoint kinds).
    for (const p of ['container.clusters.get', 'container.clusters.connect']) assert.ok(held(runtime, `projects:${PROJECT}`).has(p), p);
    // Tags resolved to digests, manifests artifacts pulled, with the ADC token.
    assert.ok(held(runtime, `projects:${PROJECT}`).has('artifactregistry.repositories.downloadArtifacts'));
    for (const topic of ['gke-deployer-queue', 'deploy-results']) assert.ok(held(runtime, `pubsub topics:${topic}`).has('pubsub.topics.publish'), topic);
    for (const secret of [...SECRETS.config, ...SECRETS.env]) assert.ok(held(runtime, `secrets:${secret}`).has('secretmanager.versions.access'), secret);
    const build = sa('gke-deployer-build');
    for (const secret of SECRETS.env) {
      assert.ok(held(build, `secrets:${secret}`).has('secretmanager.versions.list'), secret);
      assert.equal(held(build, `secrets:${secret}`).has('secretmanager.versions.access'), false, secret);
    }
  });

  test('enables every API its commands, the build, the guide and the function use', () => {
    const [enable] = named(first.calls, 'services enable');
    const enabled = new Set(enable?.positionals);
    const docs = [readFileSync(path.join(root, 'docs/deploying.md'), 'utf8'), ...['Deploying to Google Cloud', 'Operating it'].map((h) => new RegExp(`^## ${h}\\n[\\s\\S]*?(?=^## )`, 'm').exec(readme)?.[0] ?? '')];
    const documented = docs.flatMap(gcloudCommands).map((args) => args.filter((a) => a !== 'alpha' && a !== 'beta'));
    const commands = [...first.calls.map((c) => [...c.command, ...Object.entries(c.flags).map(([k]) => `--${k}`)]), ...documented, ['run', 'services', 'replace'], ['secrets', 'versions', 'list']];
    const needed = new Set(['container', 'artifactregistry', 'pubsub', 'secretmanager', 'cloudtrace'].map((a) => `${a}.googleapis.com`)); // what the function itself calls
    for (const args of commands) for (const api of apisOf(args)) needed.add(api);
    assert.deepEqual([...needed].filter((a) => !enabled.has(a)), []);
  });

  test('each topic gets a push subscription: OIDC with the audience, ack deadline covering the longest deploy, dead letters, retry policy', () => {
    const queueOnes = new Set(['gke-deployer-queue', 'gke-deployer-queue-dead-letter']);
    const created = named(first.calls, 'pubsub subscriptions create').filter((c) => c.positionals[0] !== 'gke-deployer-dead-letter' && !queueOnes.has(String(c.positionals[0])));
    assert.deepEqual(created.map((c) => [c.positionals[0], c.flags.topic]), [['gke-deployer-gcr', 'gcr'], ['gke-deployer-cloud-builds', 'cloud-builds']]);
    for (const c of created) {
      assert.equal(c.flags['push-endpoint'], `${URL}/pubsub`);
      assert.equal(c.flags['push-auth-service-account'], `gke-deployer-push@${PROJECT}.iam.gserviceaccount.com`);
      assert.equal(c.flags['push-auth-token-audience'], `${URL}/pubsub`);
      assert.equal(Number(c.flags['ack-deadline']), timeoutSeconds, 'ack deadline = service timeout');
      assert.equal(c.flags['dead-letter-topic'], 'gke-deployer-dead-letter');
      assert.ok(Number(c.flags['max-delivery-attempts']) >= 5);
      assert.match(String(c.flags['min-retry-delay']), /^\d+s$/);
      assert.match(String(c.flags['max-retry-delay']), /^\d+s$/);
    }
    const agent = `serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com`;
    assert.ok(first.state.bindings.includes(`pubsub topics:gke-deployer-dead-letter|${agent}|roles/pubsub.publisher`));
    assert.ok(first.state.bindings.includes(`pubsub subscriptions:gke-deployer-gcr|${agent}|roles/pubsub.subscriber`));
  });

  test('the queue: an ordered push subscription to /pubsub with OIDC, its own dead-letter topic (kept), and the Pub/Sub agent allowed to dead-letter', () => {
    const [queue] = named(first.calls, 'pubsub subscriptions create').filter((c) => c.positionals[0] === 'gke-deployer-queue');
    assert.ok(queue, 'the queue subscription is created');
    assert.equal(queue.flags.topic, 'gke-deployer-queue');
    assert.equal(queue.flags['enable-message-ordering'], true);
    assert.equal(queue.flags['push-endpoint'], `${URL}/pubsub`);
    assert.equal(queue.flags['push-auth-service-account'], `gke-deployer-push@${PROJECT}.iam.gserviceaccount.com`);
    assert.equal(queue.flags['push-auth-token-audience'], `${URL}/pubsub`);
    assert.equal(Number(queue.flags['ack-deadline']), timeoutSeconds, 'ack deadline = service timeout');
    assert.equal(queue.flags['dead-letter-topic'], 'gke-deployer-queue-dead-letter');
    assert.ok(Number(queue.flags['max-delivery-attempts']) >= 5);
    const [kept] = named(first.calls, 'pubsub subscriptions create').filter((c) => c.positionals[0] === 'gke-deployer-queue-dead-letter');
    assert.equal(kept?.flags.topic, 'gke-deployer-queue-dead-letter', 'dead letters have a subscription that keeps them');
    const agent = `serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com`;
    assert.ok(first.state.bindings.includes(`pubsub topics:gke-deployer-queue-dead-letter|${agent}|roles/pubsub.publisher`));
    assert.ok(first.state.bindings.includes(`pubsub subscriptions:gke-deployer-queue|${agent}|roles/pubsub.subscriber`));
    assert.match(first.stdout, new RegExp(`queue: \\{ topic: projects/${PROJECT}/topics/gke-deployer-queue, subscription: projects/${PROJECT}/subscriptions/gke-deployer-queue \\}`));
  });

  test('the Scheduler job posts {"target"} with an OIDC token for /scheduler and waits as long as a deploy may take', () => {
    const [job] = named(first.calls, 'scheduler jobs create http');
    assert.equal(job?.positionals[0], 'gke-deployer-reconcile-web');
    assert.equal(job?.flags.uri, `${URL}/scheduler`);
    assert.equal(job?.flags['http-method'], 'POST');
    assert.deepEqual(JSON.parse(String(job?.flags['message-body'])), { target: 'web' });
    assert.equal(job?.flags.headers, 'Content-Type=application/json');
    assert.equal(job?.flags['oidc-service-account-email'], `gke-deployer-scheduler@${PROJECT}.iam.gserviceaccount.com`);
    assert.equal(job?.flags['oidc-token-audience'], `${URL}/scheduler`);
    assert.equal(job?.flags['attempt-deadline'], `${timeoutSeconds}s`);
  });

  test('a target with windows or approval gets a release job every 5 minutes, posting {"target"} to /scheduler as the reconcile job does', () => {
    const jobs = named(first.calls, 'scheduler jobs create http');
    assert.deepEqual(jobs.map((j) => j.positionals[0]), ['gke-deployer-reconcile-web', 'gke-deployer-release-shop']);
    const release = jobs[1];
    assert.equal(release?.flags.schedule, '*/5 * * * *');
    assert.deepEqual(JSON.parse(String(release?.flags['message-body'])), { target: 'shop' });
    assert.equal(release?.flags['oidc-token-audience'], `${URL}/scheduler`);
    assert.match(first.stdout, new RegExp(`approve: +\\{ audience: ${URL}/approve`));
  });

  test('makes the log-based metrics for this service and the rollback alert once', () => {
    const created = named(first.calls, 'logging metrics create').map((c) => c.positionals[0]).sort();
    assert.deepEqual(created, ['gke-deployer/deploy-duration', 'gke-deployer/deploys', 'gke-deployer/rollbacks', 'gke-deployer/time-to-ready']);
    const file = String(named(first.calls, 'logging metrics create')[0]?.flags['config-from-file']);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /resource\.labels\.service_name="gke-deployer"/);
    assert.doesNotMatch(text, /\$\{SERVICE\}/);
    assert.equal(named(first.calls, 'alpha monitoring policies create').length, 1);
    assert.match(String(named(first.calls, 'alpha monitoring policies create')[0]?.flags['policy-from-file']), /deploy\/gcloud\/monitoring\/alert-rollbacks\.yaml$/);
    assert.equal(named(second.calls, 'logging metrics update').length, 4);
    assert.equal(named(second.calls, 'alpha monitoring policies create').length, 0);
  });

  test('stores the config file once, and gives each webhook secret a random first version', () => {
    assert.deepEqual(first.state.resources['secrets:gke-deployer-config']?.versions, ['auth: { direct: none }\n']);
    const github = first.state.resources['secrets:gke-deployer-github-webhook-secret']?.versions ?? [];
    assert.equal(github.length, 1);
    assert.match(github[0]!, /^[0-9a-f]{64}$/);
    assert.notEqual(github[0], first.state.resources['secrets:gke-deployer-gitlab-webhook-token']?.versions?.[0]);
  });

  test('is idempotent: the second run creates nothing, adds no secret version, and updates what it manages', () => {
    const creates = second.calls.filter((c) => c.command.includes('create') || c.command.join(' ') === 'run deploy' || c.command.join(' ') === 'secrets versions add');
    assert.deepEqual(creates.map((c) => c.command.join(' ')), []);
    assert.deepEqual(named(second.calls, 'run services update'), [], 'no new revision without a new config');
    assert.equal(named(second.calls, 'pubsub subscriptions update').length, 3);
    assert.equal(named(second.calls, 'scheduler jobs update http').length, 2);
    assert.equal(named(second.calls, 'scheduler jobs update http')[0]?.flags['update-headers'], 'Content-Type=application/json');
    assert.deepEqual(second.state.bindings, first.state.bindings);
  });

  test('a changed config is a new secret version and a new revision of the same service, not a rebuild', () => {
    assert.equal(changed.code, 0, changed.stderr);
    assert.deepEqual(changed.state.resources['secrets:gke-deployer-config']?.versions, ['auth: { direct: none }\n', 'auth: { direct: none }\nclusters: {}\n']);
    const [update] = named(changed.calls, 'run services update');
    assert.deepEqual([update?.positionals[0], update?.flags.region, update?.flags['update-labels']], ['gke-deployer', REGION, 'gke-deployer-config=2']);
    assert.deepEqual(named(changed.calls, 'run deploy'), []);
  });

  test('report tokens and chat webhook URLs: secrets created empty (the build wires one in once it has a version), the topic when REPORT_TOPIC is set', () => {
    for (const secret of SECRETS.report) assert.deepEqual(first.state.resources[`secrets:${secret}`]?.versions, [], secret);
    assert.deepEqual(named(first.calls, 'pubsub topics create').map((c) => c.positionals[0]).filter((t) => t === 'deploy-results'), ['deploy-results']);
    assert.match(first.stdout, new RegExp(`report:\\n    topic: projects/${PROJECT}/topics/deploy-results\\n`));
    // Every printed gcloud command (the build, how to store a token) uses flags the CLI has.
    // (The printed text also says "gcloud token" in prose: only commands are checked.)
    const printed = gcloudCommands(first.stdout).filter((c) => c[0] === 'builds' || c[0] === 'secrets');
    assert.ok(printed.some((c) => c.join(' ').startsWith(`secrets versions add ${SECRETS.report[0]}`)), first.stdout);
    for (const args of printed) assert.doesNotThrow(() => checkCall(args), args.join(' '));
  });

  test('NETWORK: the service gets Direct VPC egress to private ranges, compute is enabled, and the build command passes it on', async () => {
    const vpcDir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-setup-vpc-'));
    // No queue here (fewer calls): only the service matters.
    const run = await setup(vpcDir, { NETWORK: 'prod-vpc', SUBNET: 'run-europe-west4', QUEUE: '' });
    assert.equal(run.code, 0, run.stderr);
    const [deployed] = named(run.calls, 'run deploy');
    assert.deepEqual([deployed?.flags.network, deployed?.flags.subnet, deployed?.flags['vpc-egress']], ['prod-vpc', 'run-europe-west4', 'private-ranges-only']);
    assert.ok(named(run.calls, 'services enable')[0]?.positionals.includes('compute.googleapis.com'));
    const [submit] = gcloudCommands(run.stdout).filter((c) => c[0] === 'builds');
    assert.match(String(checkCall(submit ?? []).flags.substitutions), /,_NETWORK=prod-vpc,_SUBNET=run-europe-west4,/);
    // Without NETWORK, none of it.
    const [plain] = named(first.calls, 'run deploy');
    assert.deepEqual([plain?.flags.network, plain?.flags['vpc-egress']], [undefined, undefined]);
    assert.equal(named(first.calls, 'services enable')[0]?.positionals.includes('compute.googleapis.com'), false);
  });

  test('TRACES=gcp: the runtime identity may write spans (cloudtrace.traces.patch, what the Cloud Trace exporter calls); without it, no grant; another value is refused', async () => {
    const traceDir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-setup-traces-'));
    const run = await setup(traceDir, { TRACES: 'gcp', QUEUE: '' });
    assert.equal(run.code, 0, run.stderr);
    const granted = run.state.bindings.filter((b) => b.startsWith(`projects:${PROJECT}|${sa('gke-deployer')}|roles/cloudtrace.`));
    assert.deepEqual(granted, [`projects:${PROJECT}|${sa('gke-deployer')}|roles/cloudtrace.agent`]);
    assert.ok(IAM_ROLES['roles/cloudtrace.agent']?.includedPermissions.includes('cloudtrace.traces.patch'));
    assert.ok(named(run.calls, 'services enable')[0]?.positionals.includes('cloudtrace.googleapis.com'));
    assert.deepEqual(first.state.bindings.filter((b) => b.includes('roles/cloudtrace.')), []);
    const wrong = await setup(traceDir, { TRACES: 'jaeger' });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /TRACES must be gcp or empty, not 'jaeger'/);
  });

  test('prints the audiences for deployer.yaml and a build command whose flags exist', () => {
    assert.match(first.stdout, new RegExp(`pubsub: +\\{ audience: ${URL}/pubsub`));
    const [args] = gcloudCommands(first.stdout).filter((c) => c[0] === 'builds');
    assert.ok(args, first.stdout);
    const submit = checkCall(args);
    assert.equal(submit.flags.config, 'cloudbuild.yaml');
    // The commit tags the image (cloudbuild.yaml's _COMMIT): the shell fills it in from the clone.
    assert.match(String(submit.flags.substitutions), /,_COMMIT=\$\(git rev-parse --short HEAD\)$/);
  });
});
