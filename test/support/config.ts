// deployer.yaml for tests, built from objects so each test states only what it varies.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { SandboxInfo } from '../../sandbox/index.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';

export const REPO = 'europe-docker.pkg.dev/sandbox-project/apps/web';

export function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
}

export function gkeCluster(info: SandboxInfo) {
  return { gke: { project: info.project, location: info.location, name: info.cluster } };
}

/**
 * Images in a real-looking Artifact Registry (REPO) exist nowhere the sandbox reaches, so a
 * target that names only such images and says nothing of pinning deploys them by tag: the
 * tests that use them are about something else. Release tests use the sandbox's registry.
 */
function unpinnedOutsideSandbox(target: Record<string, unknown>): Record<string, unknown> {
  const images = Array.isArray(target.images) ? target.images : [];
  const outside = images.length > 0 && images.every((i) => typeof i === 'string' && /^[a-z0-9-]+-docker\.pkg\.dev\/|^([a-z]+\.)?gcr\.io\//.test(i));
  return outside && !('pinDigests' in target) ? { ...target, pinDigests: false } : target;
}

export function configYaml(opts: {
  clusters: Record<string, unknown>;
  targets: Record<string, Record<string, unknown>>;
  auth?: Record<string, unknown>;
  rules?: Record<string, unknown>[];
  report?: Record<string, unknown>;
  queue?: { topic: string; subscription: string };
  windows?: Record<string, unknown>;
}): string {
  const targets = Object.fromEntries(Object.entries(opts.targets).map(([name, t]) => [name, unpinnedOutsideSandbox(t)]));
  return stringify({ auth: opts.auth ?? { direct: 'none' }, clusters: opts.clusters, targets, ...(opts.rules && { rules: opts.rules }), ...(opts.report && { report: opts.report }), ...(opts.queue && { queue: opts.queue }), ...(opts.windows && { windows: opts.windows }) });
}

/** A manifests target for web.yaml in `namespace`. */
export function webTarget(namespace: string, extra: Record<string, unknown> = {}) {
  return { cluster: 'sandbox', namespace, manifests: ['web.yaml'], container: 'web', images: [REPO], ...extra };
}

/** What the config loader refuses `text` for, each problem with its path; [] when it takes it. */
export function configProblems(text: string, env: NodeJS.ProcessEnv = {}, file = '/nowhere/deployer.yaml'): string[] {
  try {
    parseConfig(text, file, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return [];
}
