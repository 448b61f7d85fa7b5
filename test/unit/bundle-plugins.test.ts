// The build's edits of library files (scripts/bundle-plugins.ts): each applies exactly once to
// the library installed here, and a file an edit no longer fits fails the build, by name.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';
import { LIBRARY_EDITS, applyEdits, libraryEdit, type LibraryEdit } from '../../scripts/bundle-plugins.ts';

const root = path.resolve(import.meta.dirname, '../..');

test('each library edit applies exactly once to the library installed here', async () => {
  assert.deepEqual([...new Set(LIBRARY_EDITS.map((e) => e.file.split('/')[0]))].sort(), ['@grpc', '@kubernetes', 'google-gax']);
  for (const edit of LIBRARY_EDITS) {
    const file = path.join(root, 'node_modules', edit.file);
    const edited = applyEdits(await readFile(file, 'utf8'), edit, file);
    for (const [from, to] of edit.edits) {
      assert.ok(edited.includes(to), `${edit.file}: ${to.split('\n')[0]}`);
      assert.ok(!edited.includes(from), `${edit.file}: ${from.split('\n')[0]} is still there`);
    }
  }
});

/** Bundles `entry` requiring a fake `lib` whose index is `text`, with `edit` on it. */
async function bundleWith(edit: LibraryEdit, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-edits-'));
  await mkdir(path.join(dir, 'node_modules/lib'), { recursive: true });
  await writeFile(path.join(dir, 'node_modules/lib/index.js'), text);
  await writeFile(path.join(dir, 'entry.js'), "module.exports = require('lib');\n");
  const out = await build({ entryPoints: [path.join(dir, 'entry.js')], absWorkingDir: dir, bundle: true, write: false, platform: 'node', plugins: [libraryEdit(edit)], logLevel: 'silent' });
  return out.outputFiles[0]!.text;
}

test('an edit that no longer applies exactly once fails the build, naming the file and the edit', async () => {
  const edit: LibraryEdit = { name: 'test-edit', file: 'lib/index.js', edits: [['const a = 1;', 'const a = 2;']] };
  assert.match(await bundleWith(edit, 'const a = 1;\nmodule.exports = a;\n'), /\ba = 2;/);
  const refused = /lib[\\/]index\.js: the test-edit edit starting "const a = 1;" no longer applies exactly once/;
  await assert.rejects(bundleWith(edit, 'const b = 1;\nmodule.exports = b;\n'), refused);
  await assert.rejects(bundleWith(edit, 'const a = 1;\nconst a = 1;\nmodule.exports = a;\n'), refused);
});
