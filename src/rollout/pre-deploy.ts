// Jobs as deploy gates: each `preDeploy` Job runs with the new image, to completion,
// before any workload changes. Every run has its own name, derived from the request id,
// so runs never collide, a redelivered event finds its own run, and
// ttlSecondsAfterFinished cleans old runs up.
import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import { applyObjects, type ApplyOptions } from '../apply/apply.ts';
import type { JobRun } from '../deploy/result.ts';
import { jobLogTail } from './job-logs.ts';
import { waitForRollout, type WaitOptions } from './wait.ts';

/** How long a finished run stays for inspection when its manifest does not say. */
export const DEFAULT_JOB_TTL_SECONDS = 86_400;

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
  opts: ApplyOptions & WaitOptions & { requestId: string; container?: string },
): Promise<PreDeployResult> {
  const runs = jobs.map((job) => {
    const run = structuredClone(job) as KubernetesObject & { spec?: { ttlSecondsAfterFinished?: number } };
    run.metadata = { ...run.metadata, name: runName(job.metadata?.name ?? 'job', opts.requestId) };
    run.spec = { ttlSecondsAfterFinished: DEFAULT_JOB_TTL_SECONDS, ...run.spec };
    return run;
  });
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
