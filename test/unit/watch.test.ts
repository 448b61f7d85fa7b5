// listWatch against a small scripted client: a relist replaces what was known (an object
// absent from the new list was deleted while nobody watched), a transient refusal of the
// list is retried, a permanent one ends the stream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../../src/cluster/client.ts';
import { DeployError } from '../../src/errors.ts';
import { listWatch, type EventType } from '../../src/rollout/watch.ts';

const pod = (name: string, resourceVersion = '1'): KubernetesObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion } });
const SPEC = { apiVersion: 'v1', kind: 'Pod', namespace: 'ns' };

/**
 * `lists`: what each list call answers, in turn (an Error is thrown). Each watch answers
 * 410 Gone at once (so the stream lists again) until the lists run out; the last one stays
 * open until aborted.
 */
function scripted(lists: (KubernetesObject[] | Error)[]) {
  let listed = 0;
  let idle = () => {};
  const client = {
    list() {
      const next = lists[listed++];
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve({ items: next ?? [], resourceVersion: String(listed), path: '/api/v1/namespaces/ns/pods' });
    },
    watch(_path: string, _query: Record<string, string>, onEvent: (type: string, obj: KubernetesObject) => void, done: (err: unknown) => void) {
      const controller = new AbortController();
      if (listed < lists.length) {
        setImmediate(() => {
          onEvent('ERROR', { code: 410 } as KubernetesObject);
          done(null);
        });
      } else {
        controller.signal.addEventListener('abort', () => done(null), { once: true });
        setImmediate(idle);
      }
      return Promise.resolve(controller);
    },
    invalidateCredentials: () => Promise.resolve(),
  };
  return { client: client as unknown as KubeClient, lists: () => listed, onIdle: (fn: () => void) => (idle = fn) };
}

/** Runs the stream until its last scripted watch is open (or it ends); resolves with what it saw and how it ended. */
async function run({ client, onIdle }: ReturnType<typeof scripted>) {
  const seen: [EventType, string][] = [];
  const controller = new AbortController();
  onIdle(() => controller.abort());
  const ended = await listWatch(client, SPEC, (type, obj) => void seen.push([type, obj.metadata?.name ?? '']), controller.signal).then(() => 'returned', (err: unknown) => err);
  return { seen, ended };
}

test('a relist drops what it no longer lists: those objects were deleted while nobody watched', async () => {
  const { seen, ended } = await run(scripted([[pod('a'), pod('b')], [pod('b', '2')]]));
  assert.equal(ended, 'returned');
  assert.deepEqual(seen, [['ADDED', 'a'], ['ADDED', 'b'], ['DELETED', 'a'], ['ADDED', 'b']]);
});

test('a transient refusal of the list (503 past the client budget, the API unreachable) is retried; the stream goes on', async () => {
  const unavailable = new DeployError('CLUSTER_UNAVAILABLE', 'cannot reach the Kubernetes API at https://k: ECONNRESET');
  const throttled = new ApiException(503, 'Service Unavailable', { message: 'injected' }, {});
  const script = scripted([unavailable, throttled, [pod('a')]]);
  const { seen, ended } = await run(script);
  assert.equal(ended, 'returned', String(ended));
  assert.deepEqual(seen, [['ADDED', 'a']]);
  assert.equal(script.lists(), 3);
});

test('a permanent refusal (RBAC 403) ends the stream with the error', async () => {
  const forbidden = new ApiException(403, 'Forbidden', { message: 'pods is forbidden' }, {});
  const script = scripted([forbidden, [pod('a')]]);
  const { seen, ended } = await run(script);
  assert.ok(ended instanceof Error, String(ended));
  assert.match(ended.message, /forbidden/i);
  assert.deepEqual(seen, []);
  assert.equal(script.lists(), 1, 'not retried');
});

test('a dropped watch resumes from the last resourceVersion it saw: a watch from there, not a new list', async () => {
  // Watch 1 reports two Pods (resourceVersions 5, 7) and a bookmark (9), then its connection
  // drops; watch 2 reports one more (11) and drops; watch 3 stays open.
  const watches: { resourceVersion: string | undefined; path: string }[] = [];
  let lists = 0;
  const controller = new AbortController();
  const client = {
    list: () => (lists++, Promise.resolve({ items: [pod('a', '3')], resourceVersion: '4', path: '/api/v1/namespaces/ns/pods' })),
    watch(path: string, query: Record<string, string>, onEvent: (type: string, obj: KubernetesObject) => void, done: (err: unknown) => void) {
      watches.push({ resourceVersion: query.resourceVersion, path });
      const c = new AbortController();
      const n = watches.length;
      setImmediate(() => {
        if (n === 1) {
          onEvent('ADDED', pod('b', '5'));
          onEvent('MODIFIED', pod('a', '7'));
          onEvent('BOOKMARK', { metadata: { resourceVersion: '9' } });
          done(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
        } else if (n === 2) {
          onEvent('MODIFIED', pod('b', '11'));
          done(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
        } else {
          controller.abort();
        }
      });
      return Promise.resolve(c);
    },
    invalidateCredentials: () => Promise.resolve(),
  } as unknown as KubeClient;
  const seen: [EventType, string, string | undefined][] = [];
  await listWatch(client, SPEC, (type, obj) => void seen.push([type, obj.metadata?.name ?? '', obj.metadata?.resourceVersion]), controller.signal);
  assert.equal(lists, 1, 'listed once: each drop resumed the watch');
  assert.deepEqual(watches.map((w) => w.resourceVersion), ['4', '9', '11']);
  assert.deepEqual(seen, [['ADDED', 'a', '3'], ['ADDED', 'b', '5'], ['MODIFIED', 'a', '7'], ['MODIFIED', 'b', '11']]);
});
