// deploy/gcloud/render-service.sh as cloudbuild.yaml's deploy step runs it, against the gcloud
// stub: the service.yaml that `gcloud run services replace` would get.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { installGcloudStub, readState, type StubState } from './gcloud-stub.ts';
import type { Call } from './gcloud-help.ts';

const root = path.resolve(import.meta.dirname, '../../..');
export const RENDER_SCRIPT = path.join(root, 'deploy/gcloud/render-service.sh');

/** Stub state in which each named secret exists with that many enabled versions (0: none yet). */
export function secretsState(versions: Record<string, number>): StubState {
  const resources = Object.fromEntries(Object.entries(versions).map(([name, n]) => [`secrets:${name}`, { versions: Array.from({ length: n }, (_, i) => `value ${i + 1}`) }]));
  return { resources, bindings: [], calls: [] };
}

export interface Rendered {
  yaml: string;
  stderr: string;
  calls: Call[];
}

/** Renders `file` with `env` (IMAGE, PROJECT, REGION, SERVICE, NETWORK?, SUBNET?) and the stub's `state`; throws when the script fails. */
export function renderService(file: string, env: Record<string, string>, state: StubState): Rendered {
  const dir = mkdtempSync(path.join(tmpdir(), 'gke-deployer-render-'));
  const stateFile = path.join(dir, 'state.json');
  writeFileSync(stateFile, JSON.stringify(state));
  installGcloudStub(dir, stateFile);
  const run = spawnSync('bash', [RENDER_SCRIPT, file], { env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir, ...env }, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`render-service.sh exited with ${run.status}:\n${run.stderr}`);
  return { yaml: run.stdout, stderr: run.stderr, calls: readState(stateFile).calls };
}
