// Jobs as deploy gates: each `preDeploy` Job runs with the new image, to completion,
// before any workload changes. Every run has its own name, derived from the request id,
// so runs never collide, a redelivered event finds its own run, and
// ttlSecondsAfterFinished cleans old runs up. One run per target at a time: the deploy
// runs them under the target's Lease (cluster-deploy.ts), and a run still going from an
// earlier request (its deploy ended first, e.g. `timed-out`) makes a new one wait:
// JOB_RUNNING (409, retryable). Runs carry the label RUN_OF so they can be found.
import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import { applyObjects, jobFinished, type ApplyOptions } from '../apply/apply.ts';
import { apiError } from '../apply/errors.ts';
import { DeployError } from '../errors.ts';
import type { JobRun } from '../core/result.ts';
import { jobLogTail } from './job-logs.ts';
import { waitForRollout, type WaitOptions } from './wait.ts';

/** How long a finished run stays for inspection when its manifest does not say. */
export const DEFAULT_JOB_TTL_SECONDS = 86_400;
/** The label on every preDeploy run: the target's name (a DNS-1123 label, so a valid label value). */
export const RUN_OF = 'gke-deployer/pre-deploy-of';

export interface PreDeployResult {
  state: 'complete' | 'failed' | 'timed-out';
  reason?: string;
  runs: JobRun[];
}

export function runName(jobName: string, requestId: string): string {
  const suffix = createHash('sha256').update(requestId).digest('hex').slice(0, 8);
  // Job names become a label value on their Pods: 63 characters at most.
  return `${jobName.slice(0, 63 - suffix.length - 1).replace(/-+$/, '')}-${suffix}`;
}

export async function runPreDeploy(
  client: KubeClient,
  jobs: readonly KubernetesObject[],
  opts: ApplyOptions & WaitOptions & { target: string; requestId: string; container?: string },
): Promise<PreDeployResult> {
  const runs = jobs.map((job) => {
    const run = structuredClone(job) as KubernetesObject & { spec?: { ttlSecondsAfterFinished?: number } };
    run.metadata = { ...run.metadata, name: runName(job.metadata?.name ?? 'job', opts.requestId), labels: { ...run.metadata?.labels, [RUN_OF]: opts.target } };
    run.spec = { ttlSecondsAfterFinished: DEFAULT_JOB_TTL_SECONDS, ...run.spec };
    return run;
  });
  await refuseWhileAnotherRuns(client, runs, opts);
  const applied = await applyObjects(client, runs, opts);
  const waited = await waitForRollout(client, applied.map((a) => a.change.after), opts);
  const results: JobRun[] = waited.objects.map((o) => ({
    name: o.name,
    status: o.readiness === 'ready' ? 'complete' : o.readiness === 'failed' ? 'failed' : waited.state === 'timed-out' ? 'timed-out' : 'running',
    ...(o.readiness !== 'ready' && { message: o.message }),
  }));
  if (waited.state === 'ready') return { state: 'complete', runs: results };
  if (waited.state === 'failed') {
    for (const run of results.filter((r) => r.status === 'failed')) {
      run.reason = waited.reason ?? 'Failed';
      const job = applied.find((a) => a.report.name === run.name)!.change.after;
      const logs = await jobLogTail(client, job, opts.namespace, opts.container);
      if (logs) run.logs = logs;
    }
  }
  return { state: waited.state === 'failed' ? 'failed' : 'timed-out', ...(waited.reason !== undefined && { reason: waited.reason }), runs: results };
}

/** A run of the target's preDeploy Jobs from another request, not finished yet: never two at once. */
async function refuseWhileAnotherRuns(client: KubeClient, runs: readonly KubernetesObject[], opts: { namespace: string; target: string }): Promise<void> {
  const ours = new Set(runs.map((r) => r.metadata?.name));
  let items: KubernetesObject[];
  try {
    ({ items } = await client.list('batch/v1', 'Job', opts.namespace, { labelSelector: `${RUN_OF}=${opts.target}` }));
  } catch (err) {
    throw apiError(err, { apiVersion: 'batch/v1', kind: 'Job', metadata: { namespace: opts.namespace, name: `-l ${RUN_OF}=${opts.target}` } }, 'list');
  }
  const other = items.find((job) => !ours.has(job.metadata?.name) && !jobFinished(job));
  if (other) {
    throw new DeployError('JOB_RUNNING', `preDeploy Job ${opts.namespace}/${other.metadata?.name ?? '?'} of an earlier deploy of target "${opts.target}" is still running; one preDeploy run per target at a time: deploy again once it has finished`);
  }
}
