// The shape of deployer.yaml. Strict objects everywhere: a misspelt key is an error
// at start-up, not a silently ignored setting.
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase letters, digits, "-")');
const nonEmpty = z.string().min(1);
/** An image repository without tag or digest, e.g. europe-docker.pkg.dev/p/apps/web. */
const repository = z
  .string()
  .regex(/^[a-z0-9.-]+(:[0-9]+)?(\/[a-z0-9._-]+)+$/, 'must be an image repository without tag or digest, e.g. europe-docker.pkg.dev/my-proj/apps/web');

const oidc = z.strictObject({
  audience: nonEmpty,
  serviceAccounts: z.array(z.email()).min(1),
});
/** `none` must be written out: unauthenticated access is never a default. */
const callerAuth = z.union([z.literal('none'), oidc]);
/** /deploy: as every caller, and `breakGlass`: who may deploy outside a window with `override` (needs OIDC, to know who). */
const directAuth = z.union([z.literal('none'), oidc.extend({ breakGlass: z.array(z.email()).min(1).optional() })]);

/** A full subscription name, as Pub/Sub writes it into every push. */
const subscriptionName = z
  .string()
  .regex(/^projects\/[a-z0-9.:-]+\/subscriptions\/[A-Za-z][\w.~+%-]*$/, 'must be a full subscription name, projects/<project>/subscriptions/<name>');
/**
 * The push subscription's OIDC token proves which service account pushed, not which topic the
 * message came from: `subscriptions` narrows /pubsub to the subscriptions named. `token: none`
 * is the emulator's case (it sends no token) with an allow-list still possible.
 */
const pubsubAuth = z.union(
  [
    z.literal('none'),
    oidc.extend({ subscriptions: z.array(subscriptionName).min(1).optional() }),
    z.strictObject({ token: z.literal('none'), subscriptions: z.array(subscriptionName).min(1).optional() }),
  ],
  { error: 'must be none, {audience, serviceAccounts, subscriptions?} or {token: none, subscriptions?}' },
);

/** Pub/Sub message kinds a target accepts beyond its rules (Artifact Registry and Cloud Build messages reach it only through rules). */
export const MESSAGE_KINDS = ['intent'] as const;

const ENDPOINT_KINDS = ['auto', 'dns', 'internal', 'public', 'connect-gateway'] as const;
type EndpointKindName = (typeof ENDPOINT_KINDS)[number];

const gke = z.strictObject({
  project: nonEmpty,
  location: nonEmpty,
  name: nonEmpty,
  /** How long a warm instance trusts the endpoint and CA it looked up. */
  cacheTtlSeconds: z.number().int().positive().default(600),
  /** Which control-plane endpoint to reach (src/cluster/gke-endpoint.ts); absent means `auto`, which picks from what the cluster offers. */
  // A refined string, not z.enum: an enum's failure aborts the cluster union, whose
  // error would then only say "must have exactly one of gke, …" without the path.
  endpoint: z
    .string()
    .refine((v): v is EndpointKindName => (ENDPOINT_KINDS as readonly string[]).includes(v), 'must be auto, dns, internal, public or connect-gateway')
    .optional(),
  /** Fleet membership for `connect-gateway`: projects/P/locations/L/memberships/M (default: the cluster's own `fleet.membership`). */
  membership: z
    .string()
    .regex(/^(\/\/gkehub\.googleapis\.com\/)?projects\/[^/\s]+\/locations\/[^/\s]+\/memberships\/[^/\s]+$/, 'must be projects/PROJECT/locations/LOCATION/memberships/NAME')
    .optional(),
});

const endpoint = z.strictObject({
  server: z.url({ protocol: /^https$/, error: 'must be an https:// URL (TLS is always verified)' }),
  caFile: nonEmpty,
  tokenFile: nonEmpty,
});

const inCluster = z.union([
  z.literal(true),
  z.strictObject({ serviceAccountDir: nonEmpty.default('/var/run/secrets/kubernetes.io/serviceaccount') }),
]);

const kubeconfig = z.strictObject({ path: nonEmpty, context: nonEmpty.optional() });

export const clusterSchema = z.union(
  [
    z.strictObject({ gke }),
    z.strictObject({ endpoint }),
    z.strictObject({ inCluster }),
    z.strictObject({ kubeconfig }),
  ],
  { error: 'must have exactly one of gke, endpoint, inCluster or kubeconfig' },
);

/** `300s`, `5m`, `1m30s`, `24h` or a number of seconds; kept as milliseconds. */
const anyDuration = z
  .union([z.number().int().positive(), z.string().regex(/^(\d+h)?(\d+m)?(\d+s)?$/, 'must be a duration like 300s, 5m or 1m30s').refine((d) => d !== '', 'must be a duration like 300s, 5m or 1m30s')], {
    error: 'must be a duration like 300s, 5m or 1m30s (or a number of seconds)',
  })
  .transform((d) => {
    if (typeof d === 'number') return d * 1000;
    const [, h = '0', m = '0', sec = '0'] = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(d) ?? [];
    return ((Number(h) * 60 + Number(m)) * 60 + Number(sec)) * 1000;
  });
/** A duration within one request. */
const duration = anyDuration.refine((ms) => ms <= 3_600_000, 'must be at most 1h (a Cloud Run request cannot last longer)');

/** Clusters deployed to at once by a parallel multi-cluster target, unless `rollout.maxParallel` says otherwise. */
export const DEFAULT_MAX_PARALLEL = 4;

/** How a target on several clusters goes through them (README: fan-out). */
export const STRATEGIES = ['parallel', 'sequential'] as const;

export const rolloutSchema = z
  .strictObject({
    /** Wait until the workloads are ready (Jobs complete) before answering. */
    wait: z.boolean().default(true),
    /** How long to wait; the request's own deadline may cut it shorter. */
    timeout: duration.prefault('300s'),
    /** Restore the changed workloads when the rollout fails (only when waiting: nothing fails otherwise). */
    rollback: z.boolean().default(true),
    /** A target on several clusters (`strategy: parallel`): how many clusters are deployed to at once. */
    maxParallel: z.number().int().positive().default(DEFAULT_MAX_PARALLEL),
  })
  // prefault: the defaults go through the schema, so the timeout becomes milliseconds.
  .prefault({});

/** `${tag}`, `${sha}`, `${shortSha}`, `${branch}`: the rule image templates' variables (src/release/template.ts fills them). */
const TEMPLATE_VARIABLE = /\$\{(sha|shortSha|tag|branch)\}/g;
/** A tag after the template is filled: the OCI tag grammar, checked with every variable standing for one character. */
const tagTemplate = z
  .string()
  .min(1)
  .refine((t) => !/\$\{/.test(t.replace(TEMPLATE_VARIABLE, '')), 'knows only ${tag}, ${sha}, ${shortSha} and ${branch}')
  .refine((t) => /^[\w][\w.-]{0,127}$/.test(t.replace(TEMPLATE_VARIABLE, 'x')), 'must be an OCI tag (letters, digits, _ . -; at most 128) or a template of one, e.g. "${tag}"');

/** Manifests that travel with the image: an OCI artifact, fetched by tag, applied by digest. */
const ociManifests = z.strictObject({
  oci: repository,
  tag: tagTemplate,
});

/** Days as Cloud Deploy's deploy policies name them. */
export const WEEKDAYS = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'] as const;
/** An IANA time zone, as the runtime's ICU knows it (e.g. Europe/Berlin, America/New_York, UTC). */
const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone, e.g. Europe/Berlin');
const timeOfDay = z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'must be HH:MM, 00:00 to 24:00');
/** RFC 3339; without an offset it is a wall-clock time in the entry's timeZone. */
const instant = z.iso.datetime({ offset: true, local: true, error: 'must be an RFC 3339 date-time, e.g. 2026-12-24T00:00:00Z (without an offset: in timeZone)' });
const weeklyWindow = z
  .strictObject({ days: z.array(z.enum(WEEKDAYS, { error: 'must be MONDAY … SUNDAY' })).min(1), startTime: timeOfDay, endTime: timeOfDay, timeZone })
  .refine((w) => w.startTime < w.endTime, { error: 'startTime must be before endTime (a window across midnight is two entries)', path: ['endTime'] });
const oneTimeWindow = z.strictObject({ start: instant, end: instant, timeZone });
export const windowEntrySchema = z.union([weeklyWindow, oneTimeWindow], { error: 'must be {days, startTime, endTime, timeZone} or {start, end, timeZone}' });
/** A named deploy window (`windows.<name>`): when automated deploys may run. Deny wins over allow. */
export const windowSchema = z
  .strictObject({ allow: z.array(windowEntrySchema).min(1).optional(), deny: z.array(windowEntrySchema).min(1).optional() })
  .refine((w) => w.allow !== undefined || w.deny !== undefined, { error: 'needs allow, deny or both' });

/** Every deploy of the target waits for a listed person's POST /approve (src/control/). */
const approvalSchema = z.strictObject({
  approvers: z.array(z.email()).min(1),
  /** A held deploy nobody approved within this long is dropped, reported `expired`. */
  expireAfter: anyDuration.prefault('24h'),
});

export const targetSchema = z
  .strictObject({
    cluster: nonEmpty.optional(),
    /** Several clusters, in order (the first is the canary of `strategy: sequential`). */
    clusters: z
      .array(nonEmpty)
      .min(1, 'must name at least one cluster')
      .superRefine((list, ctx) => {
        list.forEach((c, i) => {
          if (list.indexOf(c) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `"${c}" is listed twice` });
        });
      })
      .optional(),
    /** parallel: every cluster at once (bounded by rollout.maxParallel); sequential: in order, stopping at the first failure. */
    strategy: z.enum(STRATEGIES, { error: 'must be parallel or sequential' }).default('parallel'),
    namespace: name,
    /** Files baked into the deployer's image, or an OCI artifact released with the image. */
    manifests: z.union([z.array(nonEmpty).min(1), ociManifests], { error: 'must be a list of files or {oci: REPOSITORY, tag: TEMPLATE}' }).optional(),
    /** Resolve the image's tag to its digest before applying: absent, wherever the registry is one the deployer reaches with its ADC token; true: refuse when it cannot; false: never. */
    pinDigests: z.boolean().optional(),
    /** Delete objects that left the manifests once the new release is Ready (an ApplySet). Default: true for OCI manifests, false for files. */
    prune: z.boolean().optional(),
    deployment: name.optional(),
    container: nonEmpty.optional(),
    images: z.array(repository).min(1),
    /** Cluster-scoped kinds (e.g. ClusterRole) this target may apply; none by default. */
    clusterScoped: z.array(nonEmpty).default([]),
    /** Take over fields owned by another field manager instead of reporting a conflict. */
    force: z.boolean().default(false),
    rollout: rolloutSchema,
    /** Job manifests run with the new image, to completion, before any workload changes. */
    preDeploy: z.array(nonEmpty).min(1).optional(),
    /** `[intent]`: a deploy-intent message on /pubsub may deploy this target. None by default: any publisher to the topic could. */
    accept: z.array(z.enum(MESSAGE_KINDS, { error: 'must be intent (Artifact Registry and Cloud Build messages reach a target through rules)' })).default([]),
    /** Named deploy windows (top-level `windows`): outside them an automated deploy is held. */
    windows: z.array(name).min(1).optional(),
    approval: approvalSchema.optional(),
  })
  .refine((t) => (t.manifests === undefined) !== (t.deployment === undefined), {
    error: 'needs exactly one of manifests (apply these files) or deployment (update the image of an existing Deployment)',
  })
  .refine((t) => (t.cluster === undefined) !== (t.clusters === undefined), {
    error: 'needs exactly one of cluster (one cluster) or clusters (a list: deploys to each)',
  });

/** The name of an environment variable holding a secret (the secret itself never sits in the file). */
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name, e.g. GITHUB_WEBHOOK_SECRET');

/** An image repository, or a git repository as owner/name (GitLab: group/subgroup/name). */
const gitRepository = z.string().regex(/^[\w.-]+(\/[\w.-]+)+$/, 'must be owner/name');
/** `v*` (glob) or a semver range such as `>=1.0.0 <2`. */
const tagPattern = z.string().min(1).max(200);
const imageTemplate = z
  .string()
  .min(1)
  .refine((t) => /\$\{(sha|shortSha|tag|branch)\}/.test(t), 'must use ${sha}, ${shortSha}, ${tag} or ${branch}')
  .refine((t) => !/\$\{(?!(sha|shortSha|tag|branch)\})/.test(t), 'knows only ${sha}, ${shortSha}, ${tag} and ${branch}');
const targetList = z.array(name).min(1);

export const ruleSchema = z.discriminatedUnion('source', [
  z.strictObject({ source: z.literal('artifact-registry'), repository, tags: tagPattern.optional(), targets: targetList }),
  z.strictObject({ source: z.literal('cloud-build'), repository, tags: tagPattern.optional(), targets: targetList }),
  z.strictObject({
    source: z.enum(['github', 'gitlab']),
    repository: gitRepository,
    /** Pushes and successful pipelines on this branch (default: any branch). */
    branch: z.string().min(1).optional(),
    /** Tag pushes / published packages whose tag matches. */
    tags: tagPattern.optional(),
    image: imageTemplate,
    targets: targetList,
  }),
]);

/** A full topic name, projects/<project>/topics/<topic> (Pub/Sub resource ids: 3–255 chars, a letter first). */
const topicName = z
  .string()
  .regex(/^projects\/[a-z0-9.:-]+\/topics\/[A-Za-z][\w.~+%-]{2,254}$/, 'must be a full topic name, projects/<project>/topics/<topic>');
/**
 * Where a credential goes (a status API with its token, a chat webhook URL that is one): https,
 * or plain http to this machine only (a local fake in tests; refused on Cloud Run, see
 * production.ts). load.ts checks the webhook URLs, read from the environment, with it too.
 */
export const httpsOrLoopback = z
  .url({ protocol: /^https?$/, error: 'must be an https:// URL' })
  .refine((u) => u.startsWith('https://') || /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(\/|$)/.test(u), 'must be https:// (http:// only to localhost or 127.0.0.1, for a local fake)');
const apiUrl = httpsOrLoopback.transform((u) => u.replace(/\/+$/, ''));
const LOG_URL_FIELDS = /\$\{(requestId|target|eventId|sha)\}/g;
/** A link to the deploy's logs, posted with each status; `${requestId}`, `${target}`, `${eventId}`, `${sha}` are filled in (URL-encoded). */
const logUrl = z
  .string()
  .regex(/^https:\/\/[^\s]+$/, 'must be an https:// URL')
  .refine((u) => !/\$\{/.test(u.replace(LOG_URL_FIELDS, '')), 'knows only ${requestId}, ${target}, ${eventId} and ${sha}');
/** The chat notification reporters (`report.chat`, `report.slack`): one webhook each. */
export const CHAT_KINDS = ['chat', 'slack'] as const;
export type ChatKind = (typeof CHAT_KINDS)[number];
/** The webhook URL is itself the credential: it lives in the environment variable named, never in the file. */
const chatWebhook = z.strictObject({ webhookEnv: envName });
const statusHost = (defaultApi: string) => z.strictObject({ tokenEnv: envName, apiUrl: apiUrl.default(defaultApi) });

/** Where results go besides the answer and the log line (src/report/reporters.ts). */
export const reportSchema = z.strictObject({
  /** Every finished deploy is published here as one JSON message. */
  topic: topicName.optional(),
  /** GitHub Deployments and Deployment Statuses for GitHub-sourced deploys. */
  github: statusHost('https://api.github.com').optional(),
  /** GitLab commit statuses for GitLab-sourced deploys. */
  gitlab: statusHost('https://gitlab.com/api/v4').optional(),
  logUrl: logUrl.optional(),
  /** A Google Chat incoming webhook: one message per finished deploy (src/report/chat.ts). */
  chat: chatWebhook.optional(),
  /** A Slack incoming webhook, the same messages. */
  slack: chatWebhook.optional(),
});

/**
 * The queue (src/queue/): webhooks, Scheduler jobs and `/deploy` with `queue: true` publish their
 * intents to `topic` and answer 202; the push `subscription` on it delivers them to /pubsub.
 */
export const queueSchema = z.strictObject({
  topic: topicName,
  subscription: subscriptionName,
});

export const configSchema = z.strictObject({
  auth: z.strictObject({
    direct: directAuth,
    /** /approve and /reject: Google-signed ID tokens with this audience (a person's gcloud token is accepted too); who may is each target's approval.approvers. */
    approve: z.strictObject({ audience: nonEmpty }).optional(),
    pubsub: pubsubAuth.optional(),
    scheduler: callerAuth.optional(),
    github: z.strictObject({ secretEnv: envName }).optional(),
    gitlab: z.strictObject({ tokenEnv: envName }).optional(),
    /** Where Google's OIDC signing certs are fetched from (the sandbox serves its own). */
    certsUrl: z.url().optional(),
  }),
  clusters: z.record(name, clusterSchema),
  targets: z.record(name, targetSchema),
  rules: z.array(ruleSchema).default([]),
  /** Named deploy windows, referenced by targets. */
  windows: z.record(name, windowSchema).default({}),
  report: reportSchema.optional(),
  queue: queueSchema.optional(),
});

export type RawConfig = z.infer<typeof configSchema>;
export type ClusterSpec = z.infer<typeof clusterSchema>;
export type TargetSpec = z.infer<typeof targetSchema>;
export type OciManifests = z.infer<typeof ociManifests>;
export type OidcSettings = z.infer<typeof oidc>;
export type CallerAuth = z.infer<typeof callerAuth>;
export type DirectAuth = z.infer<typeof directAuth>;
export type WindowSpec = z.infer<typeof windowSchema>;
export type WindowEntry = z.infer<typeof windowEntrySchema>;
export type PubsubAuth = z.infer<typeof pubsubAuth>;
export type Rule = z.infer<typeof ruleSchema>;
export type AuthConfig = RawConfig['auth'];
export type ReportConfig = z.infer<typeof reportSchema>;
export type QueueConfig = z.infer<typeof queueSchema>;
