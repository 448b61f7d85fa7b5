// docs/deploying.md and the README's deploy section: every gcloud command they show uses
// only flags the installed CLI has, the troubleshooting tables cover every error code in
// src/errors.ts and every outcome of a deploy, and the guide has its architecture diagram.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkCall, gcloudCommands } from './support/gcloud-help.ts';

const root = path.resolve(import.meta.dirname, '../..');
const guide = readFileSync(path.join(root, 'docs/deploying.md'), 'utf8');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const deploySection = /^## Deploying to Google Cloud\n[\s\S]*?(?=^## )/m.exec(readme)?.[0] ?? '';

/** The codes src/errors.ts declares (as a union of literals or as keys of a table). */
function errorCodes(): string[] {
  const source = readFileSync(path.join(root, 'src/errors.ts'), 'utf8');
  const codes = new Set([...source.matchAll(/^\s*(?:\|\s*'([A-Z_]+)'|([A-Z][A-Z_]+): \{?)/gm)].map((m) => (m[1] ?? m[2])!));
  return [...codes];
}

describe('docs/deploying.md and the README deploy section', () => {
  test('every gcloud command shown uses commands and flags the installed CLI has', () => {
    const commands = [...gcloudCommands(guide), ...gcloudCommands(deploySection)];
    assert.ok(commands.length >= 10, `${commands.length} commands found`);
    for (const args of commands) assert.doesNotThrow(() => checkCall(args), `gcloud ${args.join(' ')}`);
  });

  test('the troubleshooting table covers every error code, with its HTTP status', () => {
    const codes = errorCodes();
    assert.ok(codes.length >= 20, codes.join(' '));
    for (const code of codes) assert.match(guide, new RegExp(`^\\| \`${code}\` \\| \\d{3} \\|`, 'm'), code);
  });

  test('the outcomes table lists every rollout outcome with the status /deploy answers', () => {
    const expected = { ready: 200, applied: 200, 'dry-run': 200, 'rolled-back': 422, failed: 422, 'timed-out': 504, duplicate: 200, stale: 409 };
    for (const [status, http] of Object.entries(expected)) assert.match(guide, new RegExp(`^\\| \`${status}\` \\| ${http} \\|`, 'm'), status);
  });

  test('has the architecture diagram (Mermaid), the step-by-step setup and each trigger', () => {
    assert.match(guide, /```mermaid\nflowchart/);
    for (const heading of ['## Setup, step by step', '## Triggers', '## Troubleshooting', '## Rights in the cluster (RBAC)']) assert.ok(guide.includes(heading), heading);
    for (const trigger of ['Artifact Registry pushes', 'Cloud Build results', 'Scheduled reconcile', 'GitHub', 'GitLab', 'CI or a person']) {
      assert.match(guide, new RegExp(`^\\| ${trigger} \\|`, 'm'), trigger);
    }
  });

  test('the README summarizes, links the guide, and names the health route Cloud Run probes', () => {
    assert.match(deploySection, /\(docs\/deploying\.md\)/);
    assert.match(deploySection, /envsubst < deploy\/kubernetes\/rbac\.yaml \| kubectl apply -f -/);
    assert.match(readme, /^\| `GET \/health`/m);
  });
});
