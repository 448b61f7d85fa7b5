// Runs the real function (functions-framework, our router, our pipeline) in-process
// on a loopback port, with a config written to a temp folder.
import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ff from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { createApp, type AppOptions } from '../../src/app.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { jsonLogger } from '../../src/core/log.ts';
import { guardServer } from '../../src/sources/body-limit.ts';
import { recordOutput, rememberConfiguredSecrets } from './leaks.ts';

export interface RunningFunction {
  url: string;
  dir: string;
  /** Parsed log entries, as Cloud Logging would see them (the trace is `logging.googleapis.com/trace`). */
  logs: { severity: string; message: string; [k: string]: unknown }[];
  /** The exact text the production logger wrote, one JSON line per entry: what leak checks search. */
  lines: string[];
  post(route: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

let seq = 0;

/** `files` are written next to deployer.yaml (manifests, token files…); `env` adds to the function's environment. */
export async function startFunction(configYaml: string, files: Record<string, string> = {}, env: Record<string, string> = {}, options: AppOptions = {}): Promise<RunningFunction> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-fn-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  await writeFile(path.join(dir, 'deployer.yaml'), configYaml);
  const logs: RunningFunction['logs'] = [];
  const lines: string[] = [];
  // The production logger (redaction and all), writing to memory instead of stdout; every
  // line also goes to the suite-wide leak check (./leaks.ts).
  const log = jsonLogger((line) => {
    lines.push(line);
    recordOutput(line.trimEnd());
    logs.push(JSON.parse(line) as RunningFunction['logs'][number]);
  });
  rememberConfiguredSecrets(configYaml, { ...process.env, ...env });
  const app = createApp(loadConfigFile(path.join(dir, 'deployer.yaml')), log, { ...process.env, ...env }, options);
  const name = `deploy-test-${++seq}`;
  ff.http(name, app.handler);
  const server: Server = getTestServer(name);
  guardServer(server, log); // as src/index.ts does for functions-framework's own server
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${addr.port}`;
  return {
    url,
    dir,
    logs,
    lines,
    post: (route, body, headers) => postJson(url, route, body, headers),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
    },
  };
}

/** POSTs JSON (or a raw string) and reads the answer as JSON, or `{raw}` when it is not. */
export async function postJson(url: string, route: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url + route, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  recordOutput(text);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, body: parsed };
}
