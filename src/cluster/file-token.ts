// Bearer tokens kept in a file (a static token, or a pod's projected service-account
// token that the kubelet rotates): read once, read again after a 401.
import { readFileSync } from 'node:fs';
import type { Credentials } from './connection.ts';

export class FileToken implements Credentials {
  private readonly file: string;
  private header: string | undefined;

  constructor(file: string) {
    this.file = file;
  }

  authorization(): Promise<string> {
    if (this.header === undefined) {
      const token = readFileSync(this.file, 'utf8').trim();
      if (token === '') throw new Error(`token file ${this.file} is empty`);
      this.header = `Bearer ${token}`;
    }
    return Promise.resolve(this.header);
  }

  invalidate(): void {
    this.header = undefined;
  }
}
