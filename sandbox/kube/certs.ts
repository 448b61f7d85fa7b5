// A throwaway CA and one serving certificate for 127.0.0.1/localhost, made with the
// openssl CLI. The serving key doubles as the service-account signing key (as kwokctl
// does): one less key to generate, and nothing outside the sandbox trusts it.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runOk } from './run.ts';

export interface Certs {
  caFile: string;
  caKeyFile: string;
  certFile: string;
  keyFile: string;
  /** Service-account signing key (private; the apiserver derives the public half). */
  saKeyFile: string;
}

export async function makeCerts(dir: string): Promise<Certs> {
  const f = (name: string) => path.join(dir, name);
  const certs: Certs = {
    caFile: f('ca.crt'),
    caKeyFile: f('ca.key'),
    certFile: f('serving.crt'),
    keyFile: f('serving.key'),
    saKeyFile: f('serving.key'),
  };
  const days = '3650';
  await Promise.all([
    runOk('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', days,
      '-keyout', certs.caKeyFile, '-out', certs.caFile, '-subj', '/CN=gke-deployer-sandbox-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]),
    runOk('openssl', [
      'req', '-new', '-newkey', 'rsa:2048', '-nodes',
      '-keyout', certs.keyFile, '-out', f('serving.csr'), '-subj', '/CN=kube-apiserver',
    ]),
    // An explicit extension file, so the leaf gets exactly these (no CA:TRUE from openssl.cnf).
    writeFile(
      f('serving.ext'),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
        '',
      ].join('\n'),
    ),
  ]);
  await runOk('openssl', [
    'x509', '-req', '-in', f('serving.csr'), '-CA', certs.caFile, '-CAkey', certs.caKeyFile,
    '-set_serial', `0x${Date.now().toString(16)}`, '-days', days, '-extfile', f('serving.ext'), '-out', certs.certFile,
  ]);
  return certs;
}
