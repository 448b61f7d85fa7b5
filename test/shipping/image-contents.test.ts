// What reaches the image: project.toml's exclude list (pack's project descriptor, .gitignore
// syntax, matched here with the `ignore` library as pack matches it) keeps every test, sandbox,
// benchmark, CI and docs file, coverage output and the checkout's node_modules out, and keeps
// what the buildpack's build (`npm run gcp-build`) and the function read: src/, the build
// scripts, package.json and its lock, service.yaml, dist/, LICENSE, and the manifests a
// deployer.yaml names under /workspace (where buildpacks put the source). No container engine
// runs here, so the list is what is checked.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import ignore from 'ignore';
import { parse as parseToml } from 'smol-toml';
import { parse, parseAllDocuments } from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');
const descriptor = parseToml(readFileSync(path.join(root, 'project.toml'), 'utf8')) as { _?: { 'schema-version'?: string }; io?: { buildpacks?: { exclude?: string[]; include?: string[] } } };
const excludes = descriptor.io?.buildpacks?.exclude ?? [];
const excluded = ignore().add(excludes);

/** Every file under `dir` (relative to the repository, forward slashes), read from disk: Cloud Build's source upload has no .git. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

describe('project.toml: what reaches the image', () => {
  test('is a schema 0.2 project descriptor with an exclude list and no include list (pack takes one or the other)', () => {
    assert.equal(descriptor._?.['schema-version'], '0.2');
    assert.ok(excludes.length > 0);
    assert.equal(descriptor.io?.buildpacks?.include, undefined);
  });

  test('keeps out every test, sandbox, benchmark, CI and docs file', () => {
    for (const dir of ['test', 'sandbox', 'bench', '.ci', 'docs']) {
      const files = filesUnder(dir);
      assert.ok(files.length > 0, `${dir}/ has files`);
      const kept = files.filter((f) => !excluded.ignores(f));
      assert.deepEqual(kept, [], `${dir}/ files that would reach the image`);
    }
  });

  test("keeps out coverage output, the checkout's node_modules, the sandbox's state and logs", () => {
    for (const f of ['coverage.lcov', 'node_modules/zod/package.json', 'node_modules/.bin/tsc', '.sandbox/sandbox.json', 'build/kube-apiserver', 'npm-debug.log', '.git/HEAD']) {
      assert.ok(excluded.ignores(f), f);
    }
  });

  test('keeps what the build and the function read: src/, the build scripts, package.json and its lock, service.yaml, dist/, LICENSE', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { main: string; scripts: Record<string, string> };
    // The scripts `npm run gcp-build` runs (npm run build: node scripts/….ts && …).
    const buildScripts = [...pkg.scripts.build!.matchAll(/\bnode (\S+\.ts)\b/g)].map((m) => m[1]!);
    assert.ok(buildScripts.length >= 2, pkg.scripts.build);
    const needed = [...filesUnder('src'), ...buildScripts, 'package.json', 'package-lock.json', 'service.yaml', pkg.main, 'dist/bundle/index.mjs', 'dist/compile-cache/x', 'LICENSE', 'schema/deployer.schema.json'];
    assert.deepEqual(needed.filter((f) => excluded.ignores(f)), []);
  });

  test('keeps the manifests a deployer.yaml names under /workspace (docs/deploying.md, step 2)', () => {
    const guide = readFileSync(path.join(root, 'docs/deploying.md'), 'utf8');
    const configs = [...guide.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => [...parseAllDocuments(m[1]!)].map((d) => d.toJS() as unknown));
    const manifests = configs.flat().flatMap((c) => Object.values((c as { targets?: Record<string, { manifests?: unknown }> }).targets ?? {}).flatMap((t) => (Array.isArray(t.manifests) ? (t.manifests as string[]) : [])));
    const inImage = manifests.filter((m) => m.startsWith('/workspace/')).map((m) => m.slice('/workspace/'.length));
    assert.ok(inImage.length > 0, 'the guide names manifests under /workspace');
    assert.deepEqual(inImage.filter((f) => excluded.ignores(f)), []);
  });

  test("the config is not in the image: service.yaml's DEPLOYER_CONFIG is on a mounted volume", () => {
    const service = parse(readFileSync(path.join(root, 'service.yaml'), 'utf8')) as {
      spec: { template: { spec: { containers: { env: { name: string; value?: string }[]; volumeMounts: { mountPath: string }[] }[] } } };
    };
    const container = service.spec.template.spec.containers[0]!;
    const config = container.env.find((e) => e.name === 'DEPLOYER_CONFIG')?.value ?? '';
    assert.ok(container.volumeMounts.some((v) => config.startsWith(`${v.mountPath}/`)), `${config} is under a volume mount`);
  });
});
