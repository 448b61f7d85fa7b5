// The one shape every source turns its request into. Everything after the sources
// sees only this: not HTTP, not who sent it or how it was authenticated.
import type { TargetResult } from './result.ts';

export interface DeployIntent {
  target: string;
  /** The image to deploy. Absent: reconcile, i.e. re-apply the image the workload records as last deployed. */
  image?: string;
  dryRun: boolean;
  /** Correlates logs, the response and the stamp on applied objects. */
  requestId: string;
  /** Where the intent came from, e.g. "direct" or "pubsub/artifact-registry"; recorded on the objects. */
  source: string;
  /** The sender's id for the event (Pub/Sub messageId, delivery GUID): the same id twice is one deploy. */
  eventId: string;
  /**
   * When the event happened (RFC 3339), never later than it arrived: an intent older than the one
   * applied is stale. For a Git event, a time the host signed in the body; its `commit` is
   * ordered first (src/apply/order.ts).
   */
  eventTime: string;
  /** Apply even when stale (a deliberate manual rollback). */
  force?: boolean;
  /** The commit a GitHub or GitLab event deploys: where the report stage posts deployment statuses. */
  commit?: GitCommit;
  /** The Git ref a Git event moved: fills a release's manifests tag template (`${branch}`, `${tag}`). */
  gitRef?: { branch?: string; tag?: string };
  /**
   * Set when the intent was queued: what the report stage made then, so its deploy updates it
   * (a GitHub Deployment's id) rather than starting another.
   */
  report?: { queued?: true; githubDeployment?: number; held?: true };
  /** Break-glass: deploy outside the target's windows; who asked and why (only /deploy callers in auth.direct.breakGlass). */
  override?: { by: string; reason: string };
  /** A held intent released after approval: who approved it (src/control/). */
  approvedBy?: string;
}

export interface GitCommit {
  host: 'github' | 'gitlab';
  /** GitHub `owner/name`; GitLab the project's `path_with_namespace`. */
  repository: string;
  sha: string;
}

export interface DeployContext {
  /** Epoch ms by which the deploy must have answered; waits end before it. */
  deadline?: number;
  /** Progress lines while waiting. */
  progress?: (message: string) => void;
}

/** The deploy stage as the sources and reporters see it: an intent in, its result out. */
export type Deployer = (intent: DeployIntent, ctx?: DeployContext) => Promise<TargetResult>;
