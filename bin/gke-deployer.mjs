#!/usr/bin/env node
// `npx gke-deployer …`. In a clone it runs the TypeScript sources as they are (Node 24 strips
// their types), so no build is needed and a stale dist/ is never what runs. Installed as a
// package (under node_modules, where Node refuses to strip types) it runs the bundle that
// `npm run build` made (dist/cli/).
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`gke-deployer needs Node.js 24 or later; this is ${process.version}. In a clone, run it through npm (npx gke-deployer, npm exec), which puts the project's own Node (node_modules/.bin/node) first on PATH.`);
  process.exit(1);
}
const sources = new URL('../src/cli/main.ts', import.meta.url);
const fromSources = existsSync(sources) && !sources.pathname.includes('/node_modules/');
const entry = fromSources ? sources : new URL('../dist/cli/gke-deployer.mjs', import.meta.url);
const { run } = await import(entry.href);
process.exitCode = await run(process.argv.slice(2));
