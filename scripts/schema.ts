// `npm run build` (and `npm run schema`): schema/deployer.schema.json, the JSON Schema of
// deployer.yaml generated from the zod schema (src/config/schema.ts), so editors complete and
// check the file (`# yaml-language-server: $schema=…`, README "Editor support"). It is
// committed, so an editor can fetch it from the repository; test/shipping/config-schema.test.ts
// fails when it is not what this script makes from the current zod schema.
//  - io: 'input': the file is written in the input shape (`rollout.timeout: 5m`, defaults
//    left out); transforms and defaults apply after parsing.
//  - A zod type with no JSON Schema equivalent fails here (zod's default) rather than turn
//    silently into "anything": decide its mapping below when one is added.
//  - Refinements (refine, superRefine) have no JSON Schema form and are left out: start-up
//    still checks them, with the cross-references, files and environment variables.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.ts';

export const SCHEMA_FILE = fileURLToPath(new URL('../schema/deployer.schema.json', import.meta.url));

/** The schema as the committed file holds it (2-space JSON, a final newline). */
export function deployerJsonSchema(): string {
  const generated = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' });
  const schema = {
    $schema: generated.$schema,
    title: 'gke-deployer configuration (deployer.yaml)',
    description: 'Generated from src/config/schema.ts by scripts/schema.ts; do not edit. It checks keys, types and patterns; start-up also checks the rules it cannot express (README, Configuration reference).',
    ...generated,
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await mkdir(path.dirname(SCHEMA_FILE), { recursive: true });
  await writeFile(SCHEMA_FILE, deployerJsonSchema());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
}
