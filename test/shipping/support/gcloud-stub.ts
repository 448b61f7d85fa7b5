// A `gcloud` for tests: refuses any command or flag the installed Google Cloud CLI does
// not know (its captured --help, see gcloud-help.ts), records every call, and keeps the
// resources it was asked to create in a state file, so describe/create/update answer as
// the real project would and a second run of an idempotent script creates nothing.
// Run as a program (the wrapper written by installGcloudStub), never imported by it.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkCall, type Call } from './gcloud-help.ts';

export const PROJECT_NUMBER = '123456789012';

export interface StubState {
  /** "group:name" → versions (secrets) or the stored text (replaced services). */
  resources: Record<string, { versions?: string[]; text?: string }>;
  /** "group:resource|member|role" */
  bindings: string[];
  calls: Call[];
}

/** Writes `gcloud` into `binDir`; calls go to `stateFile`. Put binDir first on PATH. */
export function installGcloudStub(binDir: string, stateFile: string): void {
  const wrapper = path.join(binDir, 'gcloud');
  writeFileSync(
    wrapper,
    `#!/usr/bin/env bash\nGCLOUD_STUB_STATE=${JSON.stringify(stateFile)} exec ${JSON.stringify(process.execPath)} ${JSON.stringify(import.meta.filename)} "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  if (!existsSync(stateFile)) writeFileSync(stateFile, JSON.stringify({ resources: {}, bindings: [], calls: [] } satisfies StubState));
}

export function readState(stateFile: string): StubState {
  return JSON.parse(readFileSync(stateFile, 'utf8')) as StubState;
}

class Failure extends Error {}

/** The resource a call is about, as "group:name". */
function resourceKey(call: Call): string {
  const words = call.command;
  const name = call.positionals[0] ?? '';
  switch (words.join(' ')) {
    case 'run deploy':
      return `run services:${name}`;
    case 'secrets versions list':
    case 'secrets versions add':
      return `secrets:${name}`;
    case 'secrets versions access':
      return `secrets:${String(call.flags.secret)}`;
    case 'alpha monitoring policies create':
      // Named by the server; the script finds it by its display name (`list --filter`).
      return `alpha monitoring policies:${String(call.flags['policy-from-file'])}`;
    case 'iam service-accounts create':
      // Created by name, named by email everywhere else.
      return `iam service-accounts:${name}@${String(call.flags.project)}.iam.gserviceaccount.com`;
  }
  // The group is what precedes the verb: "pubsub subscriptions create" → "pubsub subscriptions".
  const verb = words.findIndex((w) => /^(describe|create|update|add-iam-policy-binding|replace)$/.test(w));
  return `${words.slice(0, verb).join(' ')}:${name}`;
}

function run(args: string[], state: StubState, stdin: () => string): string {
  const call = checkCall(args);
  state.calls.push(call);
  const command = call.command.join(' ');
  const key = resourceKey(call);
  const resource = state.resources[key];
  const must = (present: boolean): void => {
    if (present && !resource) throw new Failure(`NOT_FOUND: ${key}`);
    if (!present && resource) throw new Failure(`ALREADY_EXISTS: ${key}`);
  };
  if (command === 'services enable') return '';
  if (command === 'alpha monitoring policies list') {
    return Object.keys(state.resources).some((k) => k.startsWith('alpha monitoring policies:')) ? `projects/${String(call.flags.project)}/alertPolicies/1\n` : '';
  }
  if (command === 'projects describe') return `${PROJECT_NUMBER}\n`;
  if (command === 'projects add-iam-policy-binding' || command.endsWith('add-iam-policy-binding')) {
    if (command !== 'projects add-iam-policy-binding') must(true);
    const binding = `${key}|${String(call.flags.member)}|${String(call.flags.role)}`;
    if (!state.bindings.includes(binding)) state.bindings.push(binding);
    return '';
  }
  if (command === 'run services describe') {
    must(true);
    const [, name] = key.split(':');
    return `https://${name}-${PROJECT_NUMBER}.${String(call.flags.region)}.run.app\n`;
  }
  if (command.endsWith(' describe')) {
    must(true);
    return '';
  }
  if (command === 'secrets versions list') {
    must(true);
    return resource!.versions!.length > 0 ? `${resource!.versions!.length}\n` : '';
  }
  if (command === 'secrets versions access') {
    must(true);
    const latest = resource!.versions!.at(-1);
    if (latest === undefined) throw new Failure(`NOT_FOUND: ${key} has no version`);
    return latest;
  }
  if (command === 'secrets versions add') {
    must(true);
    const file = String(call.flags['data-file']);
    resource!.versions!.push(file === '-' ? stdin() : readFileSync(file, 'utf8'));
    // The new version's number with `--format='value(name.basename())'`; gcloud's own message goes to stderr.
    return call.flags.format === undefined ? '' : `${resource!.versions!.length}\n`;
  }
  if (command === 'run services replace') {
    state.resources[`run services:replaced`] = { text: readFileSync(call.positionals[0]!, 'utf8') };
    return '';
  }
  if (command.includes(' create') || command === 'run deploy') {
    must(false);
    state.resources[key] = command === 'secrets create' ? { versions: [] } : {};
    return '';
  }
  if (command.includes(' update')) {
    must(true);
    return '';
  }
  throw new Failure(`the stub does not know what "gcloud ${command}" returns`);
}

if (process.argv[1] === import.meta.filename) {
  const stateFile = process.env.GCLOUD_STUB_STATE;
  if (!stateFile) throw new Error('GCLOUD_STUB_STATE is not set');
  const state = readState(stateFile);
  let code = 0;
  try {
    process.stdout.write(run(process.argv.slice(2), state, () => readFileSync(0, 'utf8')));
  } catch (err) {
    // gcloud's own shape: usage errors exit 2, API errors 1.
    process.stderr.write(`ERROR: (gcloud) ${(err as Error).message}\n`);
    code = err instanceof Failure ? 1 : 2;
  }
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  process.exitCode = code;
}
