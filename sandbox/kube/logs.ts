// What `kubectl logs` shows for a container on the kwok node. kwok's kubelet server
// reads it from a CRI-format file named by a ClusterLogs in kwok's --config. kwok v0.7.0
// picks a log by pod name, namespace and container name only (never by image), so every
// container serves this one log: it says what the image tag made the container do.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';

/** The log's lines, oldest first. The last one is what a failed Job's tail ends with. */
export const CONTAINER_LOG_LINES: readonly string[] = [
  'sandbox: fake container on a kwok node: no image was pulled and no process ran',
  'sandbox: every container on the node serves this same log',
  'sandbox: the image tag decides what the container does:',
  'sandbox:   any other tag: it runs and stays Ready; in a Job it exits with code 0',
  'sandbox:   fail-pull*: it never starts (ImagePullBackOff)',
  'sandbox:   crash*: it crash-loops (CrashLoopBackOff, last exit code 1)',
  'sandbox:   fail-exit*: it exits with code 1; with restartPolicy Never the Pod fails, else it crash-loops',
];

/**
 * Writes `configFile`, a ClusterLogs for kwok's --config that serves the log to every
 * pod, and the log file beside it. The same file is the "previous" log, so
 * `kubectl logs --previous` works for crash-looping containers.
 */
export async function writeLogsConfig(configFile: string): Promise<void> {
  await mkdir(path.dirname(configFile), { recursive: true });
  const logFile = path.join(path.dirname(configFile), 'container.log');
  // CRI log format: "<RFC3339Nano time> <stream> <F=full line> <text>". Stamped now, so
  // `kubectl logs --since=…` sees them as recent.
  const time = new Date().toISOString();
  await writeFile(logFile, CONTAINER_LOG_LINES.map((l) => `${time} stdout F ${l}\n`).join(''));
  await writeFile(
    configFile,
    stringify({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterLogs',
      metadata: { name: 'sandbox-container-log' },
      // No selector: every pod kwok manages.
      spec: { logs: [{ logsFile: logFile, previousLogsFile: logFile, follow: false }] },
    }),
  );
}
