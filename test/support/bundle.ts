// The production entry point (dist/, made by `npm run build`), built here when it is
// missing or older than what it is made from, so `npm test` works on a fresh clone.
import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
export const BUNDLE_ENTRY = path.join(root, 'dist/index.mjs');

async function newestInput(): Promise<number> {
  const files = [path.join(root, 'package-lock.json'), path.join(root, 'scripts/build.ts'), path.join(root, 'service.yaml')];
  for (const entry of await readdir(path.join(root, 'src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(path.join(entry.parentPath, entry.name));
  }
  const times = await Promise.all(files.map(async (f) => (await stat(f)).mtimeMs));
  return Math.max(...times);
}

let built: Promise<string> | undefined;

/** Builds dist/ unless it is newer than every input; resolves to dist/index.mjs. */
export function ensureBundle(): Promise<string> {
  built ??= (async () => {
    const made = await stat(BUNDLE_ENTRY).then((s) => s.mtimeMs, () => 0);
    if (made < (await newestInput())) await exec(process.execPath, [path.join(root, 'scripts/build.ts')], { cwd: root });
    return BUNDLE_ENTRY;
  })();
  return built;
}
