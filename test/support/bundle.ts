// The production entry point (dist/, made by `npm run build`), built here when it is
// missing or older than what it is made from, so `npm test` works on a fresh clone
// (the same check as `npm start`'s prestart, scripts/prestart.ts).
import path from 'node:path';
import { ensureDist } from '../../scripts/prestart.ts';

const root = path.resolve(import.meta.dirname, '../..');
export const BUNDLE_ENTRY = path.join(root, 'dist/index.mjs');

let built: Promise<string> | undefined;

/** Builds dist/ unless it is newer than every input; resolves to dist/index.mjs. */
export function ensureBundle(): Promise<string> {
  built ??= ensureDist(root);
  return built;
}
