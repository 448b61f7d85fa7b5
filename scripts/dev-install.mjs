// `npm run dev`, step one: install what package-lock.json names, unless node_modules already
// holds exactly that install (npm writes node_modules/.package-lock.json after each one). Plain
// JavaScript: on a fresh clone it runs on the system's Node, before the project's Node 24 exists.
// Skipping an up-to-date install keeps `npm run dev` from touching node_modules under a running
// test suite, and makes a second start quicker.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';

const mtime = (file) => {
  try {
    return statSync(new URL(`../${file}`, import.meta.url)).mtimeMs;
  } catch {
    return undefined;
  }
};
const installed = mtime('node_modules/.package-lock.json');
const wanted = mtime('package-lock.json');
if (installed === undefined || wanted === undefined || installed < wanted) {
  console.log('[dev] npm install (node_modules is missing or older than package-lock.json)');
  execFileSync('npm', ['install', '--no-audit', '--no-fund'], { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
}
