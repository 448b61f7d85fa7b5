// The CLI (bin/gke-deployer.mjs, src/cli/). `check` and `--help` run as `npx gke-deployer`
// from a fresh git clone with no dist/, as CI would run them in the deployer's own repo:
// proof that no build is needed. `rbac` offline (in-process): the verbs for a target's kinds,
// a CRD named as a gap. In the sandbox: `plan` dry-runs against the cluster and writes
// nothing; `rbac`'s output, applied for a fresh Google identity and nothing else, is enough
// for the function run as that identity to deploy, roll back and prune.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { COMMANDS, run } from '../src/cli/main.ts';
import type { Io } from '../src/cli/command.ts';
import { ConfigError, loadConfigFile } from '../src/config/load.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { ensureBundle } from './support/bundle.ts';
import { startFunction } from './support/function.ts';
import { spawnFunction } from './support/process.ts';
import { recordOutput } from './support/leaks.ts';
import { canI, kubectl, kubectlJson, metadataHostFor, namespace, useSandboxEnv } from './support/sandbox.ts';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command run in-process, its output captured. */
async function cli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  const out = { stdout: '', stderr: '' };
  const io: Io = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), env };
  const code = await run(argv, io);
  return { code, ...out };
}

/** A folder with deployer.yaml (and `files` beside it). */
function configDir(yaml: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gke-deployer-cli-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  writeFileSync(path.join(dir, 'deployer.yaml'), yaml);
  return dir;
}

const deployment = (name: string, kind = 'Deployment') => ({
  apiVersion: 'apps/v1',
  kind,
  metadata: { name },
  spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'placeholder' }] } } },
});
const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config' }, data: { greeting: 'hello' } };
const yamlStream = (...docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');

describe('npx gke-deployer from a fresh clone, with no build (in-process where only the code is at stake)', () => {
  let clone: string;
  let base: string;
  /**
   * `npx gke-deployer …` with the clone's node_modules/.bin first on PATH, as `npm run` would
   * put it. In another folder `cwd`, `npx --prefix CLONE`: npx finds a project's own bin only
   * in that project. Offline: a bin npx did not find locally must fail, not be downloaded.
   */
  const npx = async (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Ran> => {
    const env = {
      PATH: `${path.join(clone, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
      HOME: process.env.HOME ?? tmpdir(),
      npm_config_update_notifier: 'false',
      npm_config_offline: 'true',
      ...opts.env,
    };
    const prefix = opts.cwd !== undefined ? ['--prefix', clone] : [];
    try {
      const { stdout, stderr } = await exec('npx', [...prefix, 'gke-deployer', ...args], { cwd: opts.cwd ?? clone, env });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  before(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'gke-deployer-clone-'));
    clone = path.join(base, 'repo');
    // What is committed, nothing else: no dist/, no untracked file. node_modules as `npm ci` would
    // make it (linked: installing again would only be slower).
    await exec('git', ['clone', '--quiet', root, clone]);
    symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  test('the clone has no dist/, and npx runs the bin on the Node of node_modules/.bin', async () => {
    assert.equal(existsSync(path.join(clone, 'dist')), false);
    const r = await npx(['--version']);
    const version = (JSON.parse(readFileSync(path.join(clone, 'package.json'), 'utf8')) as { version: string }).version;
    assert.deepEqual(r, { code: 0, stdout: `gke-deployer ${version}\n`, stderr: '' });
    assert.deepEqual(await cli(['--version']), r);
    assert.equal(existsSync(path.join(clone, 'dist')), false, 'nothing was built');
  });

  test('check the shipped example: exit 0 and a summary of clusters and targets', async () => {
    const r = await npx(['check', 'examples/deployer.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      [
        'examples/deployer.yaml: valid: 1 target, 1 cluster, 0 rules',
        '',
        'Clusters:',
        '  sandbox  gke projects/sandbox-project/locations/europe-west1/clusters/sandbox (endpoint auto)',
        '',
        'Targets:',
        '  hello  cluster sandbox, namespace demo: 2 objects from 1 file (Deployment/hello, Service/hello)',
        '',
      ].join('\n'),
    );
  });

  test('check a good config with rules, an OCI target (what it would fetch) and an endpoint cluster; ./deployer.yaml by default, else $DEPLOYER_CONFIG', async () => {
    const dir = configDir(
      stringify({
        auth: { direct: 'none', pubsub: { token: 'none' } },
        clusters: {
          prod: { gke: { project: 'my-proj', location: 'europe-west1', name: 'prod', endpoint: 'dns' } },
          edge: { endpoint: { server: 'https://203.0.113.7', caFile: 'ca.crt', tokenFile: 'token' } },
        },
        targets: {
          web: { clusters: ['prod', 'edge'], strategy: 'sequential', namespace: 'web', manifests: ['manifests/web.yaml'], container: 'web', images: ['europe-docker.pkg.dev/my-proj/apps/web'], preDeploy: ['manifests/migrate.yaml'] },
          api: { cluster: 'prod', namespace: 'api', manifests: { oci: 'europe-docker.pkg.dev/my-proj/apps/api-deploy', tag: '${tag}' }, images: ['europe-docker.pkg.dev/my-proj/apps/api'] },
          bump: { cluster: 'edge', namespace: 'bump', deployment: 'bump', images: ['europe-docker.pkg.dev/my-proj/apps/bump'], windows: ['office'] },
        },
        windows: { office: { allow: [{ days: ['MONDAY'], startTime: '09:00', endTime: '17:00', timeZone: 'Europe/Berlin' }] } },
        rules: [{ source: 'artifact-registry', repository: 'europe-docker.pkg.dev/my-proj/apps/web', tags: 'v*', targets: ['web'] }],
      }),
      {
        'manifests/web.yaml': fixture('manifests/web.yaml'),
        'manifests/migrate.yaml': stringify({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'migrate' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'web', image: 'placeholder' }] } } } }),
        'ca.crt': '',
        token: 'not-a-real-token',
      },
    );
    const expected = [
      'deployer.yaml: valid: 3 targets, 2 clusters, 1 rule',
      '',
      'Clusters:',
      '  prod  gke projects/my-proj/locations/europe-west1/clusters/prod (endpoint dns)',
      '  edge  endpoint https://203.0.113.7',
      '',
      'Targets:',
      '  web   clusters prod, edge (sequential), namespace web: 2 objects from 1 file (Deployment/web, Service/web); 1 preDeploy Job',
      '  api   cluster prod, namespace api: fetches europe-docker.pkg.dev/my-proj/apps/api-deploy:${tag} per deploy (OCI artifact, pinned by digest; nothing fetched now); prune',
      '  bump  cluster edge, namespace bump: image only: Deployment bump; windows office',
      '',
      'Rules:',
      '  0  artifact-registry europe-docker.pkg.dev/my-proj/apps/web (tags v*) → web',
      '',
    ].join('\n');
    const here = await npx(['check'], { cwd: dir });
    assert.deepEqual(here, { code: 0, stdout: expected, stderr: '' });
    // Elsewhere, $DEPLOYER_CONFIG names it (in-process: the same code, a faster run).
    const elsewhere = await cli(['check'], { DEPLOYER_CONFIG: path.join(dir, 'deployer.yaml') });
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    assert.equal(elsewhere.stdout.split('\n')[0], `${path.join(dir, 'deployer.yaml')}: valid: 3 targets, 2 clusters, 1 rule`);
  });

  test('check a bad config: exit 1, every problem with its path, on stderr', async () => {
    const dir = configDir(
      stringify({
        auth: { direct: 'none' },
        clusters: { prod: { gke: { project: 'p', location: 'europe-west1', name: 'prod' } } },
        targets: { web: { cluster: 'prd', namespace: 'Web', manifests: ['missing.yaml'], images: ['europe-docker.pkg.dev/p/r/web'], windows: ['night'] } },
        rules: [{ source: 'artifact-registry', repository: 'europe-docker.pkg.dev/p/r/web', targets: ['webb'] }],
      }),
    );
    const r = await npx(['check', path.join(dir, 'deployer.yaml')]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      [
        `${path.join(dir, 'deployer.yaml')}: 6 problems`,
        '  - targets.web.namespace: must be a DNS-1123 label (lowercase letters, digits, "-")',
        '  - targets.web.cluster: unknown cluster "prd"',
        `  - targets.web.manifests.0: ${path.join(dir, 'missing.yaml')}: ENOENT: no such file or directory, open '${path.join(dir, 'missing.yaml')}'`,
        '  - targets.web.windows.0: unknown window "night" (define it under windows:)',
        '  - rules.0.targets: unknown target "webb"',
        '  - auth.pubsub: required by the artifact-registry rules (an OIDC audience and service accounts, or {token: none} for an emulator)',
        '',
      ].join('\n'),
    );
  });

  test('check a config whose secrets this environment lacks: each is a warning, exit 0; start-up still refuses it', async () => {
    const yaml = stringify({
      auth: { direct: 'none', github: { secretEnv: 'GH_WEBHOOK_SECRET' } },
      clusters: { edge: { endpoint: { server: 'https://203.0.113.7', caFile: 'ca.crt', tokenFile: 'secrets/token' } } },
      targets: { web: { cluster: 'edge', namespace: 'web', deployment: 'web', images: ['europe-docker.pkg.dev/p/r/web'] } },
      report: { github: { tokenEnv: 'GH_STATUS_TOKEN' }, chat: { webhookEnv: 'CHAT_WEBHOOK_URL' } },
    });
    const dir = configDir(yaml, { 'ca.crt': '' });
    const problems = [
      `clusters.edge.endpoint.tokenFile: file not found: ${path.join(dir, 'secrets/token')}`,
      'auth.github.secretEnv: environment variable GH_WEBHOOK_SECRET is not set',
      'report.github.tokenEnv: environment variable GH_STATUS_TOKEN is not set',
      'report.chat.webhookEnv: environment variable CHAT_WEBHOOK_URL is not set',
    ];
    const r = await npx(['check'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, problems.map((p) => `warning: ${p} (start-up refuses to run without it)\n`).join(''));
    assert.equal(r.stdout.split('\n')[0], 'deployer.yaml: valid: 1 target, 1 cluster, 0 rules (4 warnings)');
    // Start-up (no missingSecret) refuses exactly these.
    assert.throws(() => loadConfigFile(path.join(dir, 'deployer.yaml'), {}), (err: unknown) => err instanceof ConfigError && assert.deepEqual(err.problems, problems) === undefined);
    // With the secrets there, no warning.
    mkdirSync(path.join(dir, 'secrets'));
    writeFileSync(path.join(dir, 'secrets/token'), 'not-a-real-token');
    const set = await cli(['check', path.join(dir, 'deployer.yaml')], { GH_WEBHOOK_SECRET: 'not-a-real-secret', GH_STATUS_TOKEN: 'not-a-real-token', CHAT_WEBHOOK_URL: 'https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t' });
    assert.deepEqual([set.code, set.stderr, set.stdout.split('\n')[0]], [0, '', `${path.join(dir, 'deployer.yaml')}: valid: 1 target, 1 cluster, 0 rules`]);
  });

  test("check --production refuses what Cloud Run's start-up refuses", async () => {
    const dir = configDir(readFileSync(path.join(root, 'examples/deployer.yaml'), 'utf8'), { 'manifests/hello.yaml': readFileSync(path.join(root, 'examples/manifests/hello.yaml'), 'utf8') });
    const r = await cli(['check', '--production', path.join(dir, 'deployer.yaml')]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `${path.join(dir, 'deployer.yaml')}: 1 problem\n  - auth.direct: "none" is refused in production (K_SERVICE is set): it lets anyone call /deploy; give it an OIDC audience and serviceAccounts\n`,
    );
  });

  test('--help for each command: usage line, description, every flag, examples; exit 0', async () => {
    const main = await npx(['--help']);
    assert.equal(main.code, 0);
    assert.deepEqual(await cli(['-h']), main);
    assert.deepEqual(await cli(['help']), main);
    // No command: the same page, on stderr, as a usage error.
    assert.deepEqual(await cli([]), { code: 2, stdout: '', stderr: main.stdout });
    assert.match(main.stdout, /^Usage: gke-deployer <command> \[flags\]\n/);
    for (const c of COMMANDS) assert.match(main.stdout, new RegExp(`^  ${c.name} +${c.summary}$`, 'm'));
    assert.deepEqual(COMMANDS.map((c) => c.name), ['check', 'rbac', 'plan']);
    for (const c of COMMANDS) {
      // `-h` and `help <command>` print the same page (in-process: the same code, a faster run).
      const page = await npx([c.name, '--help']);
      for (const variant of [[c.name, '-h'], ['help', c.name]]) assert.deepEqual(await cli(variant), page, variant.join(' '));
      for (const r of [page]) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        const lines = r.stdout.split('\n');
        assert.equal(lines[0], `Usage: gke-deployer ${c.name} ${c.usage}`);
        assert.equal(lines[2], c.description[0]);
        const flags = lines.slice(lines.indexOf('Flags:') + 1, lines.indexOf('Examples:') - 1);
        // Every flag parseArgs takes, in order, with its short form, value name and description.
        assert.deepEqual(
          flags.map((l) => l.replace(/ {2,}/g, '  ').trim()),
          Object.entries(c.flags).map(([name, f]) => `${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'string' ? ` ${f.value}` : ''}  ${f.description}`),
        );
        assert.deepEqual(lines.slice(lines.indexOf('Examples:') + 1), [...c.examples.map((e) => `  ${e}`), '']);
      }
    }
  });

  test('usage errors exit 2: an unknown command, an unknown flag, plan without its arguments', async () => {
    assert.deepEqual(await npx(['deploy']), { code: 2, stdout: '', stderr: 'gke-deployer: unknown command "deploy"\nRun \'gke-deployer --help\' for the commands.\n' });
    const flag = await cli(['check', '--verbose']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^gke-deployer check: Unknown option '--verbose'/);
    const plan = await cli(['plan', 'web']);
    assert.deepEqual(plan, { code: 2, stdout: '', stderr: "gke-deployer plan: needs TARGET and IMAGE, got web\nRun 'gke-deployer plan --help' for usage.\n" });
  });
});

describe('installed as a package: bin/gke-deployer.mjs runs the bundle npm run build made', () => {
  test('under node_modules (where Node strips no types) it runs dist/cli/, the sources beside it unused', async () => {
    await ensureBundle();
    const installed = path.join(mkdtempSync(path.join(tmpdir(), 'gke-deployer-installed-')), 'node_modules/gke-deployer');
    for (const entry of ['bin', 'src', 'package.json', 'dist/cli']) cpSync(path.join(root, entry), path.join(installed, entry), { recursive: true });
    const { stdout, stderr } = await exec(process.execPath, [path.join(installed, 'bin/gke-deployer.mjs'), 'check', path.join(root, 'examples/deployer.yaml')]);
    const fromSources = await cli(['check', path.join(root, 'examples/deployer.yaml')]);
    assert.deepEqual({ stdout, stderr }, { stdout: fromSources.stdout, stderr: '' });
    // Nothing else to resolve: the bundle holds its dependencies (no node_modules beside it).
    assert.equal(existsSync(path.join(installed, 'node_modules')), false);
    // Were it to load src/, Node would refuse: ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING.
    await assert.rejects(exec(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(path.join(installed, 'src/cli/main.ts'))})`]), /ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING/);
  });
});

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface RbacDoc {
  kind: string;
  metadata: { name: string; namespace?: string; labels: Record<string, string> };
  rules?: Rule[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { apiGroup: string; kind: string; name: string }[];
}
const rbacDocs = (text: string): RbacDoc[] => parseAllDocuments(text).map((d) => d.toJS() as RbacDoc);
const rule = (group: string, resource: string, verbs: string[]): Rule => ({ apiGroups: [group], resources: [resource], verbs });
const SA = 'gke-deployer@my-proj.iam.gserviceaccount.com';
const PROD = { gke: { project: 'my-proj', location: 'europe-west1', name: 'prod' } };
const binding = (kind: 'RoleBinding' | 'ClusterRoleBinding', namespace?: string): RbacDoc => ({
  kind,
  metadata: { name: 'gke-deployer', ...(namespace !== undefined && { namespace }), labels: { 'app.kubernetes.io/name': 'gke-deployer' } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: kind === 'RoleBinding' ? 'Role' : 'ClusterRole', name: 'gke-deployer' },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: SA }],
});

describe('gke-deployer rbac, offline', () => {
  test('a target with a ConfigMap and a CRD kind: configmaps verbs (apply, prune, the ApplySet parent), the CRD named as a gap, exit 3', async () => {
    const widget = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } };
    const dir = configDir(
      stringify({ auth: { direct: 'none' }, clusters: { prod: PROD }, targets: { web: { cluster: 'prod', namespace: 'web', manifests: ['app.yaml'], images: ['europe-docker.pkg.dev/my-proj/apps/web'], prune: true } } }),
      { 'app.yaml': yamlStream(deployment('web'), configMap, widget) },
    );
    const r = await cli(['rbac', '-c', path.join(dir, 'deployer.yaml'), '--service-account', SA]);
    assert.equal(r.code, 3);
    const gap = 'Widget (example.com/v1) of target web: not a built-in kind, so its resource name is known to the cluster only; run with --cluster prod to ask it';
    assert.equal(r.stderr, `gke-deployer rbac: 1 gap, not granted in the output:\n  - cluster prod: ${gap}\n`);
    assert.ok(r.stdout.includes(`# GAPS: not granted below; add rules for these, or the deploy answers CLUSTER_FORBIDDEN:\n#   - ${gap}\n`), r.stdout);
    const [role, roleBinding, ...rest] = rbacDocs(r.stdout);
    assert.deepEqual(rest, []);
    assert.deepEqual(role, {
      kind: 'Role',
      apiVersion: 'rbac.authorization.k8s.io/v1',
      metadata: { name: 'gke-deployer', namespace: 'web', labels: { 'app.kubernetes.io/name': 'gke-deployer' } },
      rules: [
        rule('', 'configmaps', ['get', 'list', 'create', 'patch', 'delete']),
        rule('', 'pods', ['list', 'watch']),
        rule('apps', 'deployments', ['get', 'list', 'watch', 'create', 'patch', 'delete']),
        rule('apps', 'replicasets', ['list', 'watch']),
        rule('coordination.k8s.io', 'leases', ['get', 'create', 'update', 'delete']),
      ],
    });
    assert.deepEqual(roleBinding, { apiVersion: 'rbac.authorization.k8s.io/v1', ...binding('RoleBinding', 'web') });
    // Each rule says why, per target.
    assert.ok(r.stdout.includes('  # web: ApplySet parent (ConfigMap gke-deployer-web), apply, prune\n  - apiGroups: [""]\n    resources: [configmaps]\n    verbs: [get, list, create, patch, delete]\n'), r.stdout);
  });

  test("each target's settings and kinds: StatefulSet eviction, preDeploy Jobs, holds, clusterScoped (a ClusterRole), image-only, no wait; an OCI target is a gap", async () => {
    const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'migrate' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: 'placeholder' }] } } } };
    const clusterRole = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'db-reader' }, rules: [] };
    const images = ['europe-docker.pkg.dev/my-proj/apps/app'];
    const dir = configDir(
      stringify({
        auth: { direct: 'none', approve: { audience: 'https://d.example/approve' } },
        clusters: { prod: PROD, other: PROD },
        targets: {
          db: { cluster: 'prod', namespace: 'data', manifests: ['db.yaml'], preDeploy: ['job.yaml'], clusterScoped: ['ClusterRole'], images, approval: { approvers: ['a@example.com'] } },
          bump: { cluster: 'prod', namespace: 'web', deployment: 'web', images },
          agent: { cluster: 'prod', namespace: 'web', manifests: ['agent.yaml'], images, rollout: { wait: false } },
          oci: { cluster: 'prod', namespace: 'web', manifests: { oci: 'europe-docker.pkg.dev/my-proj/apps/web-deploy', tag: '${tag}' }, images },
          elsewhere: { cluster: 'other', namespace: 'else', manifests: ['agent.yaml'], images },
        },
      }),
      { 'db.yaml': yamlStream(deployment('db', 'StatefulSet'), clusterRole), 'job.yaml': stringify(job), 'agent.yaml': stringify(deployment('agent', 'DaemonSet')) },
    );
    const r = await cli(['rbac', '-c', path.join(dir, 'deployer.yaml'), '--cluster', 'prod'], { SERVICE_ACCOUNT: SA });
    assert.equal(r.code, 3);
    const docs = rbacDocs(r.stdout);
    assert.deepEqual(docs.map((d) => `${d.kind} ${d.metadata.namespace ?? ''}`), ['Role data', 'RoleBinding data', 'Role web', 'RoleBinding web', 'ClusterRole ', 'ClusterRoleBinding ']);
    assert.deepEqual(docs[0]!.rules, [
      // The hold record (approval), the rollout wait, a failed Job's log, a StatefulSet's rollback.
      rule('', 'configmaps', ['get', 'create', 'patch']),
      rule('', 'pods', ['list', 'watch', 'delete']),
      rule('', 'pods/eviction', ['create']),
      rule('', 'pods/log', ['get']),
      rule('apps', 'statefulsets', ['get', 'list', 'watch', 'create', 'patch', 'delete']),
      rule('batch', 'jobs', ['get', 'list', 'watch', 'create', 'patch', 'delete']),
      rule('coordination.k8s.io', 'leases', ['get', 'create', 'update', 'delete']),
    ]);
    assert.deepEqual(docs[2]!.rules, [
      // oci's ApplySet parent; bump's Deployment is patched, never created or deleted; agent waits for nothing.
      rule('', 'configmaps', ['get', 'create', 'patch']),
      rule('', 'pods', ['list', 'watch']),
      rule('apps', 'daemonsets', ['get', 'create', 'patch']),
      rule('apps', 'deployments', ['get', 'list', 'watch', 'patch']),
      rule('apps', 'replicasets', ['list', 'watch']),
      rule('coordination.k8s.io', 'leases', ['get', 'create', 'update', 'delete']),
    ]);
    assert.deepEqual(docs[4]!.rules, [rule('rbac.authorization.k8s.io', 'clusterroles', ['get', 'create', 'patch'])]);
    assert.deepEqual(docs[5], { apiVersion: 'rbac.authorization.k8s.io/v1', ...binding('ClusterRoleBinding') });
    assert.ok(!r.stdout.includes('namespace: else'), 'only the targets on --cluster');
    assert.equal(
      r.stderr,
      [
        'note: target db applies ClusterRole objects: the API server lets the deployer write them only when it holds every permission they grant (or escalate and bind, not granted here)',
        'gke-deployer rbac: 1 gap, not granted in the output:',
        '  - cluster prod: target oci: its manifests come with each release (europe-docker.pkg.dev/my-proj/apps/web-deploy:${tag}), so their kinds are not known here; for each kind: get, create, patch, list, delete (apply, prune, rollback), and the rollout verbs for workloads (deploy/kubernetes/rbac.yaml)',
        '',
      ].join('\n'),
    );
  });

  test('the shipped example needs nothing deploy/kubernetes/rbac.yaml does not grant; exit 0, the ${SERVICE_ACCOUNT} placeholder noted', async () => {
    const r = await cli(['rbac', '-c', path.join(root, 'examples/deployer.yaml')], {});
    assert.equal(r.code, 0);
    assert.equal(r.stderr, 'note: the subject is the placeholder ${SERVICE_ACCOUNT}: pass --service-account EMAIL, set SERVICE_ACCOUNT, or pipe the output through envsubst\n');
    const [role, roleBinding] = rbacDocs(r.stdout);
    assert.equal(roleBinding!.subjects![0]!.name, '${SERVICE_ACCOUNT}');
    const shipped = rbacDocs(readFileSync(path.join(root, 'deploy/kubernetes/rbac.yaml'), 'utf8'))[0]!;
    for (const { apiGroups: [group], resources: [resource], verbs } of role!.rules!) {
      const granted = new Set(shipped.rules!.filter((s) => s.apiGroups.includes(group!) && s.resources.includes(resource!)).flatMap((s) => s.verbs));
      for (const v of verbs) assert.ok(granted.has(v), `${group}/${resource}: ${v}`);
    }
  });

  test('an unknown --cluster, and a config that does not load: exit 1', async () => {
    const unknown = await cli(['rbac', '-c', path.join(root, 'examples/deployer.yaml'), '--cluster', 'prod'], {});
    assert.deepEqual(unknown, { code: 1, stdout: '', stderr: `gke-deployer rbac: no cluster "prod" in ${path.join(root, 'examples/deployer.yaml')} (it has sandbox)\n` });
    const missing = await cli(['rbac', '-c', '/nonexistent/deployer.yaml'], {});
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^invalid configuration \/nonexistent\/deployer\.yaml:\n {2}- cannot read the file: ENOENT/);
  });
});

describe('gke-deployer plan against the sandbox', () => {
  let ns: string;
  let file: string;
  let close: () => Promise<void>;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('cli-plan');
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }), { 'web.yaml': fixture('manifests/web.yaml') });
    close = () => fn.close();
    file = path.join(fn.dir, 'deployer.yaml');
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:v1` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });
  after(() => close?.());

  /** What the cluster holds: the Deployment's image and resourceVersion (any write changes it). */
  const live = async () => {
    const d = await kubectlJson<{ metadata: { resourceVersion: string }; spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'web']);
    const s = await kubectlJson<{ metadata: { resourceVersion: string } }>(['-n', ns, 'get', 'service', 'web']);
    return { image: d.spec.template.spec.containers[0]?.image, versions: [d.metadata.resourceVersion, s.metadata.resourceVersion] };
  };
  const planned = async (args: string[]) => {
    const r = await cli(['plan', ...args, '-c', file]);
    recordOutput(r.stdout);
    recordOutput(r.stderr);
    return r;
  };

  test('plan a new image: each object with its action and diff, the image change in it; the cluster unchanged', async () => {
    const before = await live();
    assert.equal(before.image, `${REPO}:v1`);
    const r = await planned(['web', `${REPO}:v2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 3), [`Target web on cluster sandbox, namespace ${ns}: dry-run, image ${REPO}:v2`, '  not pinned by digest: pinDigests: false', '']);
    assert.equal(lines[3], `Deployment/web (namespace ${ns}): configured`);
    assert.match(r.stdout, new RegExp(`^--- live: Deployment ${ns}/web\\n\\+\\+\\+ deploy: Deployment ${ns}/web$`, 'm'));
    assert.match(r.stdout, new RegExp(`^-        - image: ${REPO}:v1$`, 'm'));
    assert.match(r.stdout, new RegExp(`^\\+        - image: ${REPO}:v2$`, 'm'));
    // Only the deploy's stamps would change on the Service: /deploy calls that unchanged, and shows the diff all the same.
    assert.match(r.stdout, new RegExp(`^Service/web \\(namespace ${ns}\\): unchanged\\n={67}\\n--- live: Service ${ns}/web$`, 'm'));
    assert.equal(lines.at(-2), '2 objects: 1 configured, 1 unchanged');
    assert.deepEqual(await live(), before, 'nothing written');
  });

  test('--json: the body /deploy with dryRun answers, status dry-run', async () => {
    const r = await planned(['web', `${REPO}:v2`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as { status: string; dryRun: boolean; target: string; image: string; objects: { kind: string; action: string; diff: string }[] };
    assert.deepEqual([body.status, body.dryRun, body.target, body.image], ['dry-run', true, 'web', `${REPO}:v2`]);
    assert.deepEqual(body.objects.map((o) => `${o.kind}:${o.action}`), ['Deployment:configured', 'Service:unchanged']);
    assert.match(body.objects[0]!.diff, new RegExp(`^\\+        - image: ${REPO}:v2$`, 'm'));
    assert.equal((await live()).image, `${REPO}:v1`);
  });

  test('a dry run that fails exits 1: an image the target does not allow, an unknown target', async () => {
    const refused = await planned(['web', 'docker.io/evil/web:1']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.equal(refused.stderr, 'gke-deployer plan: IMAGE_NOT_ALLOWED: image repository "docker.io/evil/web" is not allowed for target "web"; allowed: europe-docker.pkg.dev/sandbox-project/apps/web\n');
    const unknown = await planned(['nope', `${REPO}:v2`, '--json']);
    assert.equal(unknown.code, 1);
    const body = JSON.parse(unknown.stdout) as { status: string; error: { code: string } };
    assert.deepEqual([body.status, body.error.code], ['error', 'UNKNOWN_TARGET']);
  });
});

describe("gke-deployer rbac's output, applied for a fresh identity, is all a deploy, a rollback and a prune need", () => {
  const serviceAccount = `cli-${randomBytes(4).toString('hex')}@sandbox-project.iam.gserviceaccount.com`;
  const group = `cli-${randomBytes(4).toString('hex')}.example.com`;
  const repo = 'europe-docker.pkg.dev/sandbox-project/apps/app';
  let ns: string;
  let other: string;
  let env: Record<string, string>;
  let config: string;
  let printed: Ran;
  const widget = () => ({ apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } });
  const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'app' }, spec: { selector: { app: 'app' }, ports: [{ port: 80, targetPort: 8080 }] } };

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('cli-rbac');
    other = await namespace('cli-rbac-other');
    // A kind no offline table knows: its resource name comes from the cluster's discovery.
    await kubectl(['apply', '-f', '-'], stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } } }],
      },
    }));
    await kubectl(['wait', '--for=condition=Established', `crd/widgets.${group}`, '--timeout=30s']);
    // As test/least-privilege.test.ts: the function (and the CLI) run with this identity's own metadata server.
    env = { GCE_METADATA_HOST: await metadataHostFor(info.identity, serviceAccount) };
    const target = { cluster: 'sandbox', namespace: ns, manifests: ['app.yaml'], container: 'app', images: [repo], pinDigests: false, prune: true, rollout: { timeout: '60s' } };
    config = configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { app: target } });
    const dir = configDir(config, { 'app.yaml': yamlStream(deployment('app'), service, configMap, widget()) });
    // The CLI as a user runs it, as the fresh identity: discovery needs no grant.
    try {
      const { stdout, stderr } = await exec(process.execPath, [path.join(root, 'bin/gke-deployer.mjs'), 'rbac', '--cluster', 'sandbox', '--service-account', serviceAccount], { cwd: dir, env: { ...process.env, ...env } });
      printed = { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      printed = { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
    recordOutput(printed.stdout);
    recordOutput(printed.stderr);
  });
  after(() => kubectl(['delete', 'crd', `widgets.${group}`, '--wait=false']));

  test('with --cluster, the CRD is resolved by discovery: no gap, exit 0, a rule for widgets', () => {
    assert.deepEqual([printed.code, printed.stderr], [0, '']);
    const [role] = rbacDocs(printed.stdout);
    assert.deepEqual(role!.rules, [
      rule('', 'configmaps', ['get', 'list', 'create', 'patch', 'delete']),
      rule('', 'pods', ['list', 'watch']),
      rule('', 'services', ['get', 'list', 'create', 'patch', 'delete']),
      rule('apps', 'deployments', ['get', 'list', 'watch', 'create', 'patch', 'delete']),
      rule('apps', 'replicasets', ['list', 'watch']),
      rule(group, 'widgets', ['get', 'list', 'create', 'patch', 'delete']),
      rule('coordination.k8s.io', 'leases', ['get', 'create', 'update', 'delete']),
    ]);
  });

  test('kubectl apply takes it, and it is the only grant the identity has', async () => {
    assert.match(await kubectl(['apply', '-f', '-'], printed.stdout), new RegExp(`^role.rbac.authorization.k8s.io/gke-deployer created\\nrolebinding.rbac.authorization.k8s.io/gke-deployer created\\n$`));
    type Bindings = { items: { metadata: { name: string; namespace?: string }; subjects?: { name: string }[] }[] };
    const bound = (list: Bindings) => list.items.filter((b) => b.subjects?.some((s) => s.name === serviceAccount)).map((b) => `${b.metadata.namespace ?? ''}/${b.metadata.name}`);
    assert.deepEqual([...bound(await kubectlJson<Bindings>(['get', 'rolebindings', '-A'])), ...bound(await kubectlJson<Bindings>(['get', 'clusterrolebindings']))], [`${ns}/gke-deployer`]);
    for (const args of [['get', 'secrets', '-n', ns], ['create', 'deployments.apps', '-n', other], ['list', 'configmaps', '-n', other], ['create', 'pods/exec', '-n', ns], ['create', 'pods', '--subresource=eviction', '-n', ns], ['list', 'namespaces']]) {
      assert.equal(await canI(serviceAccount, args), false, `can-i ${args.join(' ')}`);
    }
  });

  test('as that identity the function deploys (ready), rolls a crashing image back, and prunes what left the manifests', async () => {
    const first = await spawnFunction(config, { 'app.yaml': yamlStream(deployment('app'), service, configMap, widget()) }, env);
    try {
      const ready = await first.post('/deploy', { target: 'app', image: `${repo}:cli-1` });
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      assert.equal(ready.body.status, 'ready', JSON.stringify(ready.body));
      assert.deepEqual((ready.body.objects as { kind: string; action: string }[]).map((o) => `${o.kind}:${o.action}`), ['Deployment:created', 'Service:created', 'ConfigMap:created', 'Widget:created']);
      // A missing verb would answer CLUSTER_FORBIDDEN (502) instead of the rollback (422).
      const crash = await first.post('/deploy', { target: 'app', image: `${repo}:crash-cli` });
      assert.equal(crash.status, 422, JSON.stringify(crash.body));
      assert.equal(crash.body.status, 'rolled-back', JSON.stringify(crash.body));
      const d = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'app']);
      assert.equal(d.spec.template.spec.containers[0]?.image, `${repo}:cli-1`);
    } finally {
      await first.close();
    }
    // The next manifests drop the ConfigMap and the Widget: the function starts again with them, as a redeploy of the deployer would.
    const second = await spawnFunction(config, { 'app.yaml': yamlStream(deployment('app'), service) }, env);
    try {
      const res = await second.post('/deploy', { target: 'app', image: `${repo}:cli-2` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      assert.deepEqual([...(res.body.pruned as string[])].sort(), ['ConfigMap/app-config', 'Widget/w']);
      assert.equal(res.body.notPruned, undefined);
    } finally {
      await second.close();
    }
  });
});
