import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';

const exec = promisify(execFile);

// In a child process, so its exit (which must remove the files) can be observed.
const CHILD = `
import { statSync } from 'node:fs';
import { caFile, caFileDir } from './src/cluster/ca-file.ts';
const a = caFile(Buffer.from('-----BEGIN CERTIFICATE-----\\nA\\n'));
const again = caFile(Buffer.from('-----BEGIN CERTIFICATE-----\\nA\\n'));
const b = caFile(Buffer.from('-----BEGIN CERTIFICATE-----\\nB\\n'));
console.log(JSON.stringify({ dir: caFileDir(), a, again, b, mode: statSync(a).mode & 0o777 }));
`;

test('one 0600 file per distinct CA, named by its hash, removed when the process exits', async () => {
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', CHILD], { cwd: new URL('../..', import.meta.url).pathname });
  const got = JSON.parse(stdout) as { dir: string; a: string; again: string; b: string; mode: number };
  assert.equal(got.a, got.again);
  assert.notEqual(got.a, got.b);
  assert.match(got.a, /[0-9a-f]{32}\.crt$/);
  assert.equal(got.mode, 0o600);
  assert.equal(existsSync(got.dir), false, 'the folder is gone after exit');
});
