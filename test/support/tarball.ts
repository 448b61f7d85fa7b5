// Tar archives for tests of the manifests artifact reader, made with tar-stream as Go's
// archive/tar would write them (ustar, uid 0, mtime 0): good ones and hostile ones.
import { pack, type Header } from 'tar-stream';

export type TarEntry = { name: string; type?: Header['type']; linkname?: string; text?: string; bytes?: Buffer };

/** A tar made with tar-stream, as Go's archive/tar would write it (ustar, uid 0, mtime 0). */
export async function tarball(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = e.bytes ?? (e.text !== undefined ? Buffer.from(e.text) : undefined);
    const header: Partial<Header> & { name: string } = { name: e.name, type, mode: type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: new Date(0), ...(e.linkname !== undefined && { linkname: e.linkname }) };
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') p.entry({ ...header, size: body?.length ?? 0 }, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      else p.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}
