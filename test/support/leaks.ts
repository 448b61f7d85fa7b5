// The suite-wide secret check: every token and secret the tests hand out or configure is
// remembered, every log line and response body the function produces (and whatever a
// function process writes to stdout or stderr) is recorded, and the global teardown
// (test/setup.ts) fails the run if any secret shows up in any output.
// Test files run in their own processes, so both lists are files in the sandbox folder.
// The secrets are, besides what tests remember: every token the sandbox's identity server
// minted (the function's own ADC access and ID tokens from its metadata server among them;
// sandbox/google/identity.ts appends them to MINTED_TOKENS), and every `*Env` variable a
// deployer.yaml names (webhook secrets, report.*.tokenEnv status tokens), read from the
// environment the function was started with.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { MINTED_TOKENS } from '../../sandbox/google/identity.ts';

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

/**
 * Every secret a deployer.yaml names by environment variable (any key ending in `Env`, at
 * any depth: auth.github.secretEnv, auth.gitlab.tokenEnv, report.github.tokenEnv,
 * report.gitlab.tokenEnv and whatever comes later), as the function reads them from `env`.
 */
export function rememberConfiguredSecrets(configYaml: string, env: Record<string, string | undefined>): void {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key.endsWith('Env') && typeof value === 'string') rememberSecret(env[value]);
        else visit(value);
      }
    }
  };
  visit(parse(configYaml));
}

export function resetLeakCheck(dir: string): void {
  rmSync(path.join(dir, 'leak-check'), { recursive: true, force: true });
}

/** Each secret (shown by its first 4 characters) found in an output, with the line. */
export function findLeaks(dir: string): { secret: string; line: string }[] {
  const file = path.join(dir, 'leak-check', 'outputs');
  if (!existsSync(file)) return [];
  // One string searched once per secret: thousands of minted tokens against every line.
  const outputs = readFileSync(file, 'utf8');
  const leaks: { secret: string; line: string }[] = [];
  for (const secret of allSecrets(dir)) {
    const at = outputs.indexOf(secret);
    if (at === -1) continue;
    const line = outputs.slice(outputs.lastIndexOf('\n', at) + 1, (outputs.indexOf('\n', at) + 1 || outputs.length + 1) - 1);
    leaks.push({ secret: `${secret.slice(0, 4)}…`, line: line.replaceAll(secret, '<SECRET>').slice(0, 300) });
  }
  return leaks;
}

/** What tests remembered, and every token the sandbox minted (kept as minted: no line breaks). */
function allSecrets(dir: string): string[] {
  const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  const remembered = lines(path.join(dir, 'leak-check', 'secrets')).map((b) => Buffer.from(b, 'base64').toString());
  const minted = lines(path.join(dir, MINTED_TOKENS));
  return [...new Set([...remembered, ...minted])].filter((s) => s.length >= MIN_SECRET_LENGTH);
}

/** Whether the check knows `value` as a secret (the sandbox in `dir` minted it, or a test remembered it). */
export function isKnownSecret(dir: string, value: string): boolean {
  return allSecrets(dir).includes(value);
}

/** How many secrets and outputs the check saw (so a run that recorded nothing is visible). */
export function leakCheckCounts(dir: string): { secrets: number; outputs: number } {
  const f = path.join(dir, 'leak-check', 'outputs');
  return { secrets: allSecrets(dir).length, outputs: existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0 };
}
