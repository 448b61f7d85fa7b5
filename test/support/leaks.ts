// The suite-wide secret check: every token and secret the tests hand out or configure is
// remembered, every log line and response body the function produces is recorded, and
// the global teardown (test/setup.ts) fails the run if any secret shows up in any output.
// Test files run in their own processes, so both lists are files in the sandbox folder.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

/** Shorter strings could match by chance (and are no real credential). */
const MIN_SECRET_LENGTH = 8;

function folder(): string | undefined {
  const dir = process.env.SANDBOX_DIR;
  if (!dir) return undefined;
  const leaks = path.join(dir, 'leak-check');
  mkdirSync(leaks, { recursive: true });
  return leaks;
}

export function rememberSecret(value: string | undefined): void {
  const dir = folder();
  if (dir && value && value.length >= MIN_SECRET_LENGTH) appendFileSync(path.join(dir, 'secrets'), `${Buffer.from(value).toString('base64')}\n`);
}

export function recordOutput(text: string): void {
  const dir = folder();
  if (dir) appendFileSync(path.join(dir, 'outputs'), `${text.replaceAll('\n', '\\n')}\n`);
}

/** The webhook secrets a deployer.yaml names, as the function reads them from `env`. */
export function rememberConfiguredSecrets(configYaml: string, env: Record<string, string | undefined>): void {
  const auth = (parse(configYaml) as { auth?: { github?: { secretEnv?: string }; gitlab?: { tokenEnv?: string } } } | null)?.auth;
  for (const name of [auth?.github?.secretEnv, auth?.gitlab?.tokenEnv]) if (name) rememberSecret(env[name]);
}

export function resetLeakCheck(dir: string): void {
  rmSync(path.join(dir, 'leak-check'), { recursive: true, force: true });
}

/** Each secret (shown by its first 4 characters) found in an output, with the line. */
export function findLeaks(dir: string): { secret: string; line: string }[] {
  const file = (name: string) => path.join(dir, 'leak-check', name);
  if (!existsSync(file('secrets')) || !existsSync(file('outputs'))) return [];
  const secrets = [...new Set(readFileSync(file('secrets'), 'utf8').split('\n').filter(Boolean))].map((b) => Buffer.from(b, 'base64').toString());
  const outputs = readFileSync(file('outputs'), 'utf8').split('\n');
  const leaks: { secret: string; line: string }[] = [];
  for (const secret of secrets) {
    const line = outputs.find((l) => l.includes(secret));
    if (line !== undefined) leaks.push({ secret: `${secret.slice(0, 4)}…`, line: line.replaceAll(secret, '<SECRET>').slice(0, 300) });
  }
  return leaks;
}

/** How many secrets and outputs the check saw (so a run that recorded nothing is visible). */
export function leakCheckCounts(dir: string): { secrets: number; outputs: number } {
  const count = (name: string) => {
    const f = path.join(dir, 'leak-check', name);
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0;
  };
  return { secrets: count('secrets'), outputs: count('outputs') };
}
