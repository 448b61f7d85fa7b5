// `npm start`'s prestart, and the tests' ensureBundle(): dist/ (the production entry point,
// scripts/build.ts) is built when it is missing or older than anything it is made from, so
// `npm start` works in a fresh clone. When it is up to date this costs a stat of each input
// (milliseconds); a build takes about 10 s. The image never runs this: its web process starts
// functions-framework on the dist/ the buildpack built.
import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The newest modification time among what scripts/build.ts reads: src/, the lock, itself and its plugins, service.yaml. */
async function newestInput(root: string): Promise<number> {
  const files = ['package-lock.json', 'scripts/build.ts', 'scripts/bundle-plugins.ts', 'service.yaml'].map((f) => path.join(root, f));
  for (const entry of await readdir(path.join(root, 'src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(path.join(entry.parentPath, entry.name));
  }
  const times = await Promise.all(files.map(async (f) => (await stat(f)).mtimeMs));
  return Math.max(...times);
}

/** Whether `root`'s dist/index.mjs is missing or older than one of its inputs. */
export async function distIsStale(root = ROOT): Promise<boolean> {
  const made = await stat(path.join(root, 'dist/index.mjs')).then((s) => s.mtimeMs, () => 0);
  return made < (await newestInput(root));
}

/** Builds dist/ unless it is up to date; resolves to dist/index.mjs. */
export async function ensureDist(root = ROOT): Promise<string> {
  if (await distIsStale(root)) await exec(process.execPath, [path.join(root, 'scripts/build.ts')], { cwd: root });
  return path.join(root, 'dist/index.mjs');
}

if (process.argv[1] === fileURLToPath(import.meta.url) && (await distIsStale())) {
  console.error('dist/ is missing or older than src/: building it first (scripts/build.ts)');
  await ensureDist();
}
