// deployer.yaml's JSON Schema (schema/deployer.schema.json, README "Editor support"): the
// committed file is what scripts/schema.ts makes from the zod schema now; every example config
// (examples/, and each complete deployer.yaml shown in the README and docs/) names it on its
// first line, passes it (ajv, draft 2020-12, formats checked) and loads with the real loader;
// a misspelt key or a wrong type fails it. npm packs it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse, parseAllDocuments, parseDocument } from 'yaml';
import { deployerJsonSchema, SCHEMA_FILE } from '../../scripts/schema.ts';
import { configSchema } from '../../src/config/schema.ts';
import { ConfigError, loadConfigFile } from '../../src/config/load.ts';
import { isRecord } from '../../src/guards.ts';

const root = path.resolve(import.meta.dirname, '../..');
const committed = readFileSync(SCHEMA_FILE, 'utf8');
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats.default(ajv);
const validate = ajv.compile(JSON.parse(committed) as object);
const MODELINE = '# yaml-language-server: $schema=';

interface Example {
  /** Where it is shown: a file, or a Markdown file's yaml block. */
  name: string;
  text: string;
  /** The schema path the modeline must give: relative to the file, or, for a block, to a deployer.yaml at the clone's root. */
  schemaRef: string;
  /** The file itself, when the example is one (loaded where it lies). */
  file?: string;
}

/** A complete deployer.yaml (not a fragment of one): `auth` and `targets` are both required. */
function complete(text: string): boolean {
  const docs = [...parseAllDocuments(text)];
  const value: unknown = docs.length === 1 ? docs[0]!.toJS() : undefined;
  return isRecord(value) && 'auth' in value && 'targets' in value;
}

function examples(): Example[] {
  const found: Example[] = [];
  for (const f of readdirSync(path.join(root, 'examples'), { recursive: true, encoding: 'utf8' }).filter((x) => x.endsWith('.yaml'))) {
    const file = path.join(root, 'examples', f);
    const text = readFileSync(file, 'utf8');
    if (complete(text)) found.push({ name: `examples/${f}`, text, file, schemaRef: path.relative(path.dirname(file), SCHEMA_FILE) });
  }
  const markdown = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const md of markdown) {
    const blocks = [...readFileSync(path.join(root, md), 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    blocks.filter(complete).forEach((text, i) => found.push({ name: `${md} #${i + 1}`, text, schemaRef: 'schema/deployer.schema.json' }));
  }
  return found;
}

const ALL = examples();

const KUBECONFIG = (context: string) => `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:6443" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: ${JSON.stringify(context)}, context: { cluster: c, user: u } }]
current-context: ${JSON.stringify(context)}
`;
const JOB = 'apiVersion: batch/v1\nkind: Job\nmetadata: { name: migrate }\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{ name: migrate, image: example.com/m:1 }]\n';

/**
 * A Markdown example made loadable here: every file it names is written under `dir` (an
 * absolute path under dir/root, `~/` under dir/home, a relative one beside the config), the
 * config points at those copies, and each variable it names is set. Returns the config file
 * and the environment.
 */
function materialize(text: string, dir: string): { file: string; env: NodeJS.ProcessEnv } {
  const doc = parseDocument(text);
  const raw = doc.toJS() as Record<string, unknown>;
  const place = (keyPath: (string | number)[], content: string) => {
    const p = String(doc.getIn(keyPath));
    const local = p.startsWith('/') ? path.join(dir, 'root', p) : p.startsWith('~/') ? path.join(dir, 'home', p.slice(2)) : path.join(dir, p);
    mkdirSync(path.dirname(local), { recursive: true });
    writeFileSync(local, content);
    doc.setIn(keyPath, local);
  };
  const hello = readFileSync(path.join(root, 'examples/manifests/hello.yaml'), 'utf8');
  for (const [name, spec] of Object.entries(isRecord(raw.clusters) ? raw.clusters : {})) {
    if (!isRecord(spec)) continue;
    if (isRecord(spec.endpoint)) {
      place(['clusters', name, 'endpoint', 'caFile'], '');
      place(['clusters', name, 'endpoint', 'tokenFile'], 'token');
    }
    if (isRecord(spec.kubeconfig)) place(['clusters', name, 'kubeconfig', 'path'], KUBECONFIG(String(spec.kubeconfig.context)));
  }
  for (const [name, spec] of Object.entries(isRecord(raw.targets) ? raw.targets : {})) {
    if (!isRecord(spec)) continue;
    if (Array.isArray(spec.manifests)) spec.manifests.forEach((_, i) => place(['targets', name, 'manifests', i], hello));
    if (Array.isArray(spec.preDeploy)) spec.preDeploy.forEach((_, i) => place(['targets', name, 'preDeploy', i], JOB));
  }
  const env: NodeJS.ProcessEnv = {};
  const settings = (section: unknown, key: string, field: string): unknown => (isRecord(section) && isRecord(section[key]) ? section[key][field] : undefined);
  for (const [section, key, field, value] of [
    [raw.auth, 'github', 'secretEnv', 'a-webhook-secret'],
    [raw.auth, 'gitlab', 'tokenEnv', 'a-webhook-token'],
    [raw.report, 'github', 'tokenEnv', 'a-status-token'],
    [raw.report, 'gitlab', 'tokenEnv', 'a-status-token'],
    [raw.report, 'chat', 'webhookEnv', 'https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t'],
    [raw.report, 'slack', 'webhookEnv', 'https://hooks.slack.com/services/T/B/X'],
  ] as const) {
    const name = settings(section, key, field);
    if (typeof name === 'string') env[name] = value;
  }
  const file = path.join(dir, 'deployer.yaml');
  writeFileSync(file, doc.toString());
  return { file, env };
}

/** ajv's errors as `instancePath keyword detail`, for assertions and messages. */
function schemaErrors(config: unknown): string[] {
  if (validate(config)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.keyword} ${JSON.stringify(e.params)}`);
}

describe('schema/deployer.schema.json', () => {
  test('is what scripts/schema.ts makes from src/config/schema.ts now (run `npm run schema` after changing the zod schema)', () => {
    assert.equal(committed, deployerJsonSchema());
  });

  test('is JSON Schema draft 2020-12 for the input shape: defaults shown, durations as written', () => {
    const schema = JSON.parse(committed) as { $schema: string; properties: { targets: { additionalProperties: { properties: { rollout: { properties: { timeout: unknown } } } } } } };
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    // io: 'input' keeps what a person writes (`5m`, or seconds), where the output would be milliseconds.
    assert.deepEqual(schema.properties.targets.additionalProperties.properties.rollout.properties.timeout, {
      default: '300s',
      anyOf: [
        { type: 'integer', exclusiveMinimum: 0, maximum: Number.MAX_SAFE_INTEGER },
        { type: 'string', pattern: '^(\\d+h)?(\\d+m)?(\\d+s)?$' },
      ],
    });
  });

  test('is in the package npm would publish', () => {
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { files: { path: string }[] }[];
    assert.ok(packed?.files.some((f) => f.path === path.relative(root, SCHEMA_FILE)), 'schema/deployer.schema.json is packed');
  });

  test('the examples are found: examples/deployer.yaml, the README configuration reference and the guide', () => {
    const names = ALL.map((e) => e.name);
    for (const expected of ['examples/deployer.yaml', 'README.md #1', 'docs/deploying.md #1']) assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
  });

  for (const example of ALL) {
    describe(example.name, () => {
      test('names the schema on its first line, by a path that reaches it', () => {
        assert.equal(example.text.split('\n')[0], `${MODELINE}${example.schemaRef}`);
        const from = example.file ? path.dirname(example.file) : root;
        assert.equal(path.resolve(from, example.schemaRef), SCHEMA_FILE);
      });

      test('passes the JSON schema', () => {
        assert.deepEqual(schemaErrors(parse(example.text)), []);
      });

      test('loads with the real loader', () => {
        const dir = mkdtempSync(path.join(tmpdir(), 'gke-deployer-example-'));
        const { file, env } = example.file ? { file: example.file, env: {} } : materialize(example.text, dir);
        const config = loadConfigFile(file, env);
        const targets = (parse(example.text) as { targets: Record<string, unknown> }).targets;
        assert.deepEqual([...config.targets.keys()], Object.keys(targets));
      });
    });
  }

  describe('refuses what start-up refuses for its shape', () => {
    const example = () => parse(readFileSync(path.join(root, 'examples/deployer.yaml'), 'utf8')) as { targets: { hello: Record<string, unknown> } } & Record<string, unknown>;
    const cases: [string, (c: ReturnType<typeof example>) => void, string][] = [
      ['a misspelt key', (c) => { c.targets.hello.namepsace = c.targets.hello.namespace; delete c.targets.hello.namespace; }, '/targets/hello additionalProperties {"additionalProperty":"namepsace"}'],
      ['a misspelt top-level key', (c) => { c.rule = []; }, '/ additionalProperties {"additionalProperty":"rule"}'],
      ['a wrong type', (c) => { c.targets.hello.rollout = { wait: 'yes' }; }, '/targets/hello/rollout/wait type {"type":"boolean"}'],
      ['a value outside an enum', (c) => { c.targets.hello.strategy = 'serial'; }, '/targets/hello/strategy enum {"allowedValues":["parallel","sequential"]}'],
      ['a pattern mismatch', (c) => { c.targets.hello.namespace = 'Demo'; }, '/targets/hello/namespace pattern {"pattern":"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}'],
    ];
    for (const [what, change, error] of cases) {
      test(what, () => {
        const config = example();
        change(config);
        assert.ok(schemaErrors(config).includes(error), schemaErrors(config).join('\n'));
        // The zod schema refuses it too: the two agree on the shape.
        assert.equal(configSchema.safeParse(config).success, false);
      });
    }
  });

  test('leaves the rules it cannot express to start-up, as the README says: a target with both manifests and deployment', () => {
    const config = parse(readFileSync(path.join(root, 'examples/deployer.yaml'), 'utf8')) as { targets: { hello: Record<string, unknown> } };
    config.targets.hello.deployment = 'hello';
    assert.deepEqual(schemaErrors(config), []);
    const dir = mkdtempSync(path.join(tmpdir(), 'gke-deployer-example-'));
    writeFileSync(path.join(dir, 'deployer.yaml'), JSON.stringify(config));
    mkdirSync(path.join(dir, 'manifests'));
    writeFileSync(path.join(dir, 'manifests/hello.yaml'), readFileSync(path.join(root, 'examples/manifests/hello.yaml')));
    assert.throws(() => loadConfigFile(path.join(dir, 'deployer.yaml'), {}), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('targets.hello: needs exactly one of manifests')));
  });
});
