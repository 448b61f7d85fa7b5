// A release names one version everywhere: package.json's `version` is CHANGELOG.md's newest
// release (cloudbuild.test.ts ties cloudbuild.yaml's _VERSION to it too), and the project is
// Apache-2.0 in package.json and in LICENSE, whose text is the Google libraries' own.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

const root = path.resolve(import.meta.dirname, '../..');
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; license?: string };

describe('release metadata', () => {
  test("CHANGELOG.md keeps an Unreleased section first, then package.json's version as the newest release", () => {
    const headings = [...read('CHANGELOG.md').matchAll(/^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$/gm)].map((m) => ({ version: m[1]!, date: m[2] }));
    assert.equal(headings[0]?.version, 'Unreleased');
    assert.equal(headings[1]?.version, pkg.version);
    assert.match(headings[1]?.date ?? '', /^\d{4}-\d{2}-\d{2}$/, 'the release is dated');
  });

  test('is Apache-2.0: package.json says so and LICENSE is the full text the Google libraries ship', () => {
    assert.equal(pkg.license, 'Apache-2.0');
    // Copied verbatim from google-auth-library (as in every @google-cloud package): the canonical text with its appendix.
    const canonical = readFileSync(path.join(root, 'node_modules/google-auth-library/LICENSE'), 'utf8');
    assert.match(canonical, /^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    assert.equal(read('LICENSE'), canonical);
  });
});
