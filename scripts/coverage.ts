// Prints line and branch coverage per src/ folder from the lcov file `npm test` writes
// (Node's built-in test coverage), and names the src/ files no test loaded at all.
// It reports, it does not gate: the point is to see the gaps.
import { readFileSync, readdirSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import path from 'node:path';

interface Counts {
  lines: number;
  linesHit: number;
  branches: number;
  branchesHit: number;
  files: number;
}

const root = process.cwd();
const lcov = process.argv[2] ?? 'coverage.lcov';
const folders = new Map<string, Counts>();
const seen = new Set<string>();
const total: Counts = { lines: 0, linesHit: 0, branches: 0, branchesHit: 0, files: 0 };

let file = '';
let counts: Counts | undefined;
for (const line of readFileSync(lcov, 'utf8').split('\n')) {
  const [key, value = ''] = line.split(/:(.*)/s);
  if (key === 'SF') {
    file = path.relative(root, value);
    counts = file.startsWith('src/') ? { lines: 0, linesHit: 0, branches: 0, branchesHit: 0, files: 1 } : undefined;
  } else if (counts && key === 'LF') counts.lines = Number(value);
  else if (counts && key === 'LH') counts.linesHit = Number(value);
  else if (counts && key === 'BRF') counts.branches = Number(value);
  else if (counts && key === 'BRH') counts.branchesHit = Number(value);
  else if (counts && key === 'end_of_record') {
    seen.add(file);
    const folder = path.dirname(file);
    const sum = folders.get(folder) ?? { lines: 0, linesHit: 0, branches: 0, branchesHit: 0, files: 0 };
    for (const c of [sum, total]) for (const k of Object.keys(c) as (keyof Counts)[]) c[k] += counts[k];
    folders.set(folder, sum);
    counts = undefined;
  }
}

const pct = (hit: number, all: number): string => (all === 0 ? '-' : `${((100 * hit) / all).toFixed(1)}%`);
const rows = [...folders.entries()].sort(([a], [b]) => a.localeCompare(b));
const width = Math.max(...rows.map(([f]) => f.length), 'all of src'.length);
console.log(`\ncoverage of src/ (${lcov})`);
console.log(`${'folder'.padEnd(width)}  files   lines  branches`);
for (const [folder, c] of [...rows, ['all of src', total] as const]) {
  console.log(`${folder.padEnd(width)}  ${String(c.files).padStart(5)}  ${pct(c.linesHit, c.lines).padStart(6)}  ${pct(c.branchesHit, c.branches).padStart(8)}`);
}

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
// stripTypeScriptTypes is experimental in Node 24: keep its one warning out of the report.
process.removeAllListeners('warning');
/** Types only: erased by type stripping, so no test can load it (and there is nothing to cover). */
const typesOnly = (file: string): boolean =>
  stripTypeScriptTypes(readFileSync(file, 'utf8'))
    .replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
    .replace(/^\s*(export|import)\s*(\{\s*\}\s*(from\s*'[^']*')?)?;?\s*$/gm, '')
    .trim() === '';
const unloaded = sources('src').filter((f) => !seen.has(f) && !typesOnly(f));
if (unloaded.length > 0) console.log(`not loaded by any in-process test: ${unloaded.join(', ')}`);
