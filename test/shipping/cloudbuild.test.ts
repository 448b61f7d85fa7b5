// cloudbuild.yaml, parsed: its steps in order (tests, a buildpacks image, the deploy), the
// test step running the README's command minus the sandbox, the Node pin, every
// substitution defined; and its deploy step's script run as Cloud Build would (after
// substitution) against the gcloud stub, giving a valid service.yaml for the built image.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { installGcloudStub, readState } from './support/gcloud-stub.ts';
import { cloudRunService } from './support/knative.ts';
import { RENDER_SCRIPT, secretsState } from './support/render.ts';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

interface Step {
  id: string;
  name: string;
  entrypoint?: string;
  args: string[];
  env?: string[];
  dir?: string;
}
interface Build {
  substitutions: Record<string, string>;
  options?: Record<string, unknown>;
  steps: Step[];
}

const build = parse(await readFile(path.join(root, 'cloudbuild.yaml'), 'utf8')) as Build;
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
  version: string;
  main: string;
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};
const step = (id: string): Step => {
  const s = build.steps.find((x) => x.id === id);
  assert.ok(s, `a step with id ${id}`);
  return s;
};

/** Cloud Build's built-in substitutions (any build may use them). */
const BUILT_IN = new Set([
  'PROJECT_ID', 'PROJECT_NUMBER', 'BUILD_ID', 'LOCATION', 'TRIGGER_NAME', 'TRIGGER_BUILD_CONFIG_PATH', 'COMMIT_SHA', 'REVISION_ID',
  'SHORT_SHA', 'REPO_NAME', 'REPO_FULL_NAME', 'BRANCH_NAME', 'TAG_NAME', 'REF_NAME', 'SERVICE_ACCOUNT_EMAIL', 'SERVICE_ACCOUNT',
]);
const VARIABLE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** The names a string refers to as Cloud Build reads it (`$$` is a literal dollar). */
function references(s: string): string[] {
  return [...s.matchAll(VARIABLE)].map((m) => m[1] ?? m[2]).filter((n): n is string => n !== undefined);
}

/** Cloud Build's substitution: `$X`/`${X}` by value, `$$` → `$`. */
function substitute(s: string, values: Record<string, string>): string {
  return s.replace(VARIABLE, (all, a?: string, b?: string) => {
    if (all === '$$') return '$';
    const v = values[(a ?? b)!];
    if (v === undefined) throw new Error(`undefined substitution ${all}`);
    return v;
  });
}

/** The secrets service.yaml's env takes (each `secretKeyRef`), in order. */
const SERVICE_SECRETS = [...(await readFile(path.join(root, 'service.yaml'), 'utf8')).matchAll(/secretKeyRef:\n\s+name: (\S+)/g)].map((m) => m[1]!);

const strings = (s: Step): string[] => [s.name, s.entrypoint ?? '', s.dir ?? '', ...s.args, ...(s.env ?? [])];

describe('cloudbuild.yaml', () => {
  test('runs the tests, builds the image, then deploys, in that order', () => {
    assert.deepEqual(build.steps.map((s) => s.id), ['test', 'image', 'deploy']);
    // No step waits for nothing (waitFor: ['-']): each runs after the one before.
    for (const s of build.steps) assert.equal((s as { waitFor?: unknown }).waitFor, undefined);
  });

  test('the test step runs npm ci and the README test command without the sandbox, on the Node the tests pin', () => {
    const s = step('test');
    assert.equal(s.name, `node:${pkg.devDependencies.node}`);
    const script = s.args.join('\n');
    assert.match(script, /\bnpm ci\b/);
    // `npm test` minus the global setup that starts the sandbox, on the tests that need none.
    const subset = pkg.scripts.test!
      .replace(' --test-global-setup=test/setup.ts', '')
      .replace('"test/**/*.test.ts"', '"test/unit/**/*.test.ts" "test/shipping/**/*.test.ts"')
      .replace(' --floors"', ' --floors=unit"')
      .replace(/ --floors$/, ' --floors=unit');
    assert.notEqual(subset, pkg.scripts.test, 'the README command still has the shape this subset is cut from');
    assert.ok(script.includes(subset), `the test step runs:\n${subset}`);
  });

  test('the tests it runs really need no sandbox', async () => {
    for (const dir of ['test/unit', 'test/shipping']) {
      for (const f of (await readdir(path.join(root, dir), { recursive: true })).filter((x) => x.endsWith('.ts'))) {
        const source = await readFile(path.join(root, dir, f), 'utf8');
        assert.doesNotMatch(source, /from '[^']*(support\/sandbox|sandbox\/index)\.ts'|process\.env\.SANDBOX_DIR/, `${dir}/${f}`);
      }
    }
  });

  test("the image step uses Google's buildpacks google-24 builder, the deploy target and a pinned Node", () => {
    const s = step('image');
    assert.equal(s.name, 'gcr.io/k8s-skaffold/pack');
    assert.equal(s.args[0], 'build');
    assert.ok(s.args.includes('--builder=gcr.io/buildpacks/builder:google-24'));
    assert.ok(s.args.includes('--publish'));
    // The function target the buildpack starts is the one `npm start` starts.
    const target = /--target=(\S+)/.exec(pkg.scripts.start!)?.[1];
    assert.ok(s.args.includes(`--env=GOOGLE_FUNCTION_TARGET=${target}`));
    assert.ok(s.args.includes('--env=GOOGLE_FUNCTION_SIGNATURE_TYPE=http'));
    // GOOGLE_NODEJS_VERSION wins over engines.node in the buildpack; it is the Node the tests use.
    assert.ok(s.args.includes(`--env=GOOGLE_NODEJS_VERSION=${pkg.devDependencies.node}`), s.args.join(' '));
    // And the buildpack loads package.json's main, which is npm start's --source.
    assert.equal(/--source=(\S+)/.exec(pkg.scripts.start!)?.[1], pkg.main);
    // main is the bundle, which the npm buildpack makes: it runs `gcp-build` (before
    // `build`) with devDependencies installed, then prunes them
    // (GoogleCloudPlatform/buildpacks pkg/nodejs/npm.go DetermineBuildCommands).
    assert.equal(pkg.main, 'dist/index.mjs');
    assert.equal(pkg.scripts['gcp-build'], 'npm run build');
    assert.match(pkg.scripts.build!, /scripts\/build\.ts/);
    assert.ok(pkg.devDependencies.esbuild, 'esbuild is a devDependency');
  });

  test('the image is tagged with the build id (what the deploy step deploys), the version and the commit', () => {
    const args = step('image').args;
    const repository = '${_REGION}-docker.pkg.dev/${_PROJECT}/${_REPOSITORY}/${_SERVICE}';
    assert.equal(args[1], `${repository}:\${BUILD_ID}`);
    assert.deepEqual(args.filter((a) => a.startsWith('--tag')), [`--tag=${repository}:\${_VERSION}`, `--tag=${repository}:\${_COMMIT}`]);
    assert.equal(build.substitutions._VERSION, pkg.version, "_VERSION is package.json's version");
    // Triggered builds know their commit; `gcloud builds submit` passes _COMMIT.
    assert.equal(build.substitutions._COMMIT, '${SHORT_SHA}');
    assert.ok(step('deploy').args.join('\n').includes(args[1]), 'the deploy step deploys the build id tag');
  });

  describe('the test step, before anything else, refuses', () => {
    /** Runs the test step's script as Cloud Build would, in a folder holding package.json at `version`, with an `npm` that records it ran and stops there. */
    async function runTestStep(version: string, substitutions: Record<string, string>): Promise<{ code: number; stderr: string; npmRan: boolean }> {
      const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-cb-test-'));
      await writeFile(path.join(dir, 'package.json'), JSON.stringify({ version }));
      await writeFile(path.join(dir, 'npm'), `#!/bin/sh\ntouch ${JSON.stringify(path.join(dir, 'npm-ran'))}\nexit 97\n`, { mode: 0o755 });
      const s = step('test');
      const args = s.args.map((a) => substitute(a, { ...build.substitutions, ...substitutions }));
      const result = await exec(s.entrypoint!, args, { cwd: dir, env: { PATH: `${dir}:${process.env.PATH}` } }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
      const npmRan = await stat(path.join(dir, 'npm-ran')).then(() => true, () => false);
      return { ...result, npmRan };
    }

    test("a _VERSION other than package.json's", async () => {
      const r = await runTestStep('0.2.0', { _VERSION: '0.1.0', _COMMIT: 'abc1234' });
      assert.deepEqual([r.code, r.npmRan], [1, false], r.stderr);
      assert.match(r.stderr, /_VERSION is not the version in package\.json/);
    });

    test('an empty _COMMIT (a `gcloud builds submit` without it)', async () => {
      const r = await runTestStep('0.1.0', { _VERSION: '0.1.0', _COMMIT: '' });
      assert.deepEqual([r.code, r.npmRan], [1, false], r.stderr);
      assert.match(r.stderr, /_COMMIT is empty: pass _COMMIT=\$\(git rev-parse --short HEAD\)/);
    });

    test('and goes on to npm ci when both are right', async () => {
      const r = await runTestStep('0.1.0', { _VERSION: '0.1.0', _COMMIT: 'abc1234' });
      assert.deepEqual([r.code, r.npmRan], [97, true], r.stderr);
    });
  });

  test('project, region, repository and service are substitutions, and every one used is defined and used', () => {
    for (const k of ['_PROJECT', '_REGION', '_REPOSITORY', '_SERVICE']) assert.ok(k in build.substitutions, k);
    const used = new Set(build.steps.flatMap((s) => strings(s).flatMap(references)));
    for (const name of used) assert.ok(BUILT_IN.has(name) || name in build.substitutions, `$${name} is neither built in nor defined`);
    for (const name of Object.keys(build.substitutions)) {
      assert.match(name, /^_[A-Z0-9_]+$/, 'user substitutions start with _');
      assert.ok(used.has(name), `${name} is defined but never used`);
      // A default may refer to built-ins only (dynamic substitutions).
      for (const ref of references(build.substitutions[name]!)) assert.ok(BUILT_IN.has(ref), `${name} refers to ${ref}`);
    }
    if (Object.values(build.substitutions).some((v) => references(v).length > 0)) assert.equal(build.options?.dynamicSubstitutions, true);
  });

  describe('the deploy step, run as Cloud Build runs it (render-service.sh, then the replace, against the gcloud stub)', () => {
    /** Runs the deploy step with `substitutions` in a folder holding service.yaml and the render script; the stub's secrets hold versions. */
    async function runDeploy(substitutions: Record<string, string>) {
      const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-cb-'));
      await copyFile(path.join(root, 'service.yaml'), path.join(dir, 'service.yaml'));
      await mkdir(path.join(dir, 'deploy/gcloud'), { recursive: true });
      await copyFile(RENDER_SCRIPT, path.join(dir, 'deploy/gcloud/render-service.sh'));
      const builtIns = { PROJECT_ID: 'my-proj-1234', BUILD_ID: '3f1c0a4e-1d2b-4c5d-8e9f-0a1b2c3d4e5f', SHORT_SHA: 'abc1234' };
      const values: Record<string, string> = { ...builtIns, ...substitutions };
      for (const [k, v] of Object.entries(build.substitutions)) values[k] ??= substitute(v, builtIns);
      const state = path.join(dir, 'gcloud-state.json');
      // As setup.sh leaves them, the GitHub status token stored since.
      const secrets = Object.fromEntries(SERVICE_SECRETS.map((s) => [s, s.endsWith('webhook-secret') || s.endsWith('webhook-token') ? 1 : s === 'gke-deployer-github-token' ? 2 : 0]));
      await writeFile(state, JSON.stringify(secretsState(secrets)));
      installGcloudStub(dir, state);
      const deploy = step('deploy');
      assert.equal(deploy.entrypoint, 'bash');
      await exec('bash', deploy.args.map((a) => substitute(a, values)), { cwd: dir, env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir } });
      const { calls, resources } = readState(state);
      const rendered = resources['run services:replaced']?.text ?? '';
      return { values, calls, rendered, service: cloudRunService.parse(parse(rendered)), image: substitute(step('image').args[1]!, values) };
    }

    test('replaces the service with a valid service.yaml for the built image, each secret pinned to its newest version', async () => {
      const { values, calls, rendered, service, image } = await runDeploy({ _REGION: 'europe-west4' });
      assert.equal(image, `europe-west4-docker.pkg.dev/my-proj-1234/${values._REPOSITORY}/${values._SERVICE}:${values.BUILD_ID}`);
      assert.deepEqual(calls.map((c) => c.command.join(' ')), [...SERVICE_SECRETS.map(() => 'secrets versions list'), 'run services replace']);
      const replace = calls.at(-1)!;
      assert.deepEqual([replace.flags.region, replace.flags.project], ['europe-west4', 'my-proj-1234']);
      assert.doesNotMatch(rendered, /__[A-Z0-9_]+__/);
      assert.equal(service.metadata.name, values._SERVICE);
      assert.equal(service.metadata.labels?.['cloud.googleapis.com/location'], 'europe-west4');
      const container = service.spec.template.spec.containers[0]!;
      assert.equal(container.image, image);
      assert.equal(service.spec.template.spec.serviceAccountName, 'gke-deployer@my-proj-1234.iam.gserviceaccount.com');
      const secretEnv = Object.fromEntries((container.env ?? []).filter((e) => e.valueFrom).map((e) => [e.name, e.valueFrom!.secretKeyRef.key]));
      assert.deepEqual(secretEnv, { GITHUB_WEBHOOK_SECRET: '1', GITLAB_WEBHOOK_TOKEN: '1', GITHUB_STATUS_TOKEN: '2' });
      assert.equal(service.spec.template.metadata?.annotations?.['run.googleapis.com/network-interfaces'], undefined);
    });

    test('_NETWORK and _SUBNET give the revision Direct VPC egress to private ranges', async () => {
      const { service } = await runDeploy({ _REGION: 'europe-west4', _NETWORK: 'prod-vpc', _SUBNET: 'run-europe-west4' });
      const annotations = service.spec.template.metadata?.annotations ?? {};
      assert.deepEqual(JSON.parse(annotations['run.googleapis.com/network-interfaces'] ?? ''), [{ network: 'prod-vpc', subnetwork: 'run-europe-west4' }]);
      assert.equal(annotations['run.googleapis.com/vpc-access-egress'], 'private-ranges-only');
    });
  });
});
