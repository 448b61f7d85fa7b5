// The gcloud Pub/Sub emulator (Java) as a sandbox child process, driven through its
// REST API. It pushes to push subscriptions like the real service but sends no OIDC
// token (no Authorization header) with the push.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { freePort, startProcess, waitFor, type Proc } from './process.ts';

export const PUBSUB_EMULATOR_BIN = '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';

export interface PubsubEmulatorOptions {
  /** Folder for the log file (created if missing). The emulator keeps its state in memory. */
  dir: string;
  project: string;
  /** Default 60 s; the JVM takes a few seconds on a small VM. */
  startTimeoutMs?: number;
}

export interface PushSubscriptionOptions {
  topic: string;
  name: string;
  pushEndpoint: string;
  ackDeadlineSeconds?: number;
  /** pushConfig.attributes, e.g. { 'x-goog-version': 'v1' }. */
  attributes?: Record<string, string>;
}

export interface PublishMessage {
  data: Buffer | string;
  attributes?: Record<string, string>;
  orderingKey?: string;
}

/** The emulator's REST API: usable from any process that knows its host (e.g. sandbox.json's `pubsub`). */
export interface PubsubRest {
  createTopic(name: string): Promise<string>;
  createPushSubscription(opts: PushSubscriptionOptions): Promise<string>;
  /** Returns the message id the emulator assigned. */
  publish(topic: string, message: PublishMessage): Promise<string>;
  deleteSubscription(name: string): Promise<void>;
}

export interface PubsubEmulator extends PubsubRest {
  /** 127.0.0.1:PORT, the value for PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  readonly project: string;
  readonly proc: Proc;
  /** Milliseconds from spawn until the emulator answered HTTP. */
  readonly startMs: number;
  stop(): Promise<void>;
}

// Pub/Sub resource ids: 3–255 chars, start with a letter, no 'goog' prefix.
const RESOURCE_ID = /^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;

function resourcePath(project: string, kind: 'topics' | 'subscriptions', name: string): string {
  const full = new RegExp(`^projects/([^/]+)/${kind}/([^/]+)$`).exec(name);
  const id = full ? full[2] : name;
  if (full && full[1] !== project) throw new Error(`${name} is not in project ${project}`);
  if (!id || !RESOURCE_ID.test(id) || id.startsWith('goog')) throw new Error(`invalid ${kind} id ${JSON.stringify(name)}`);
  return `projects/${project}/${kind}/${id}`;
}

export async function startPubsubEmulator(opts: PubsubEmulatorOptions): Promise<PubsubEmulator> {
  await mkdir(opts.dir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const base = `http://${host}`;
  const started = performance.now();
  const proc = startProcess({
    name: 'pubsub-emulator',
    command: PUBSUB_EMULATOR_BIN,
    args: [`--host=127.0.0.1`, `--port=${port}`],
    logFile: path.join(opts.dir, 'pubsub-emulator.log'),
    // A short-lived JVM: skip the optimizing JIT and use the serial GC to start faster.
    env: { ...process.env, JAVA_OPTS: `${process.env.JAVA_OPTS ?? ''} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC`.trim() },
  });
  try {
    await waitFor(
      'the Pub/Sub emulator to answer HTTP',
      async () => (await fetch(`${base}/`, { signal: AbortSignal.timeout(1000) })).ok,
      { timeoutMs: opts.startTimeoutMs ?? 60_000, proc, intervalMs: 100 },
    );
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  const startMs = Math.round(performance.now() - started);

  return {
    ...pubsubRest(host, opts.project),
    host,
    project: opts.project,
    proc,
    startMs,
    stop: () => proc.stop(),
  };
}

/** A client for the emulator at `host` (127.0.0.1:PORT) in `project`. */
export function pubsubRest(host: string, project: string): PubsubRest {
  const base = `http://${host}`;

  async function call(method: string, url: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${base}/v1/${url}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Pub/Sub emulator ${method} /v1/${url}: HTTP ${res.status} ${text.slice(0, 500)}`);
    return text ? (JSON.parse(text) as unknown) : {};
  }

  return {
    async createTopic(name) {
      const topic = resourcePath(project, 'topics', name);
      await call('PUT', topic, {});
      return topic;
    },
    async createPushSubscription(o) {
      const subscription = resourcePath(project, 'subscriptions', o.name);
      await call('PUT', subscription, {
        topic: resourcePath(project, 'topics', o.topic),
        pushConfig: { pushEndpoint: o.pushEndpoint, ...(o.attributes ? { attributes: o.attributes } : {}) },
        ...(o.ackDeadlineSeconds === undefined ? {} : { ackDeadlineSeconds: o.ackDeadlineSeconds }),
      });
      return subscription;
    },
    async publish(topic, message) {
      const data = (typeof message.data === 'string' ? Buffer.from(message.data, 'utf8') : message.data).toString('base64');
      const res = (await call('POST', `${resourcePath(project, 'topics', topic)}:publish`, {
        messages: [{ data, ...(message.attributes ? { attributes: message.attributes } : {}), ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}) }],
      })) as { messageIds?: unknown };
      const id = Array.isArray(res.messageIds) ? (res.messageIds[0] as unknown) : undefined;
      if (typeof id !== 'string') throw new Error('Pub/Sub emulator returned no message id');
      return id;
    },
    async deleteSubscription(name) {
      await call('DELETE', resourcePath(project, 'subscriptions', name));
    },
  };
}
