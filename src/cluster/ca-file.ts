// Cluster CAs on disk: one 0600 file per distinct CA, named by its hash, written once
// per instance and removed when the process exits.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

let dir: string | undefined;
const written = new Map<string, string>();

/** Writes `pem` (once) and returns the file's path. */
export function caFile(pem: Buffer): string {
  const hash = createHash('sha256').update(pem).digest('hex').slice(0, 32);
  let file = written.get(hash);
  if (file) return file;
  if (!dir) {
    dir = mkdtempSync(path.join(tmpdir(), 'gke-deployer-ca-'));
    const created = dir;
    process.once('exit', () => rmSync(created, { recursive: true, force: true }));
  }
  file = path.join(dir, `${hash}.crt`);
  writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
  written.set(hash, file);
  return file;
}

/** The CA as TLS will use it: read back from the file, so the file is what is verified against. */
export function loadCa(file: string): Buffer {
  return readFileSync(file);
}

export function caFileDir(): string | undefined {
  return dir;
}
