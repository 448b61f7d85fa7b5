// A minimal self-signed X.509 (v1, no extensions) in pure Node, so the fake's
// /oauth2/v1/certs serves "-----BEGIN CERTIFICATE-----" like Google's does,
// without shelling out to openssl. Only what verifiers read: the public key.
import { randomBytes, sign, type KeyObject } from 'node:crypto';

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => der(0x30, ...c);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
}

function utcTime(d: Date): Buffer {
  const s = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const text = s.slice(2, 4) + s.slice(5, 7) + s.slice(8, 10) + s.slice(11, 13) + s.slice(14, 16) + s.slice(17, 19) + 'Z';
  return der(0x17, Buffer.from(text, 'ascii'));
}

const name = (cn: string): Buffer => seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn, 'utf8')))));

/** PEM of a self-signed RSA certificate for `publicKey`, signed by `privateKey` (sha256WithRSA). */
export function selfSignedCertPem(opts: {
  publicKey: KeyObject;
  privateKey: KeyObject;
  commonName: string;
  validDays: number;
}): string {
  const sha256WithRsa = seq(oid('1.2.840.113549.1.1.11'), der(0x05));
  const serial = randomBytes(8);
  serial[0] = (serial[0] ?? 0) & 0x7f; // keep the INTEGER positive
  const now = Date.now();
  const tbs = seq(
    der(0x02, serial),
    sha256WithRsa,
    name(opts.commonName),
    seq(utcTime(new Date(now - 86_400_000)), utcTime(new Date(now + opts.validDays * 86_400_000))),
    name(opts.commonName),
    opts.publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, opts.privateKey);
  const cert = seq(tbs, sha256WithRsa, der(0x03, Buffer.from([0]), signature));
  const b64 = cert.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
