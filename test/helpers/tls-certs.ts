// Certificates for TLS tests, made with the openssl command line: a CA, server certificates for given
// names and IP addresses, and client certificates, all signed by the CA (PEM files in a directory).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCa extends CertFiles {
  /** A certificate and key signed by this CA, for a server (`dns`/`ip` names) or a client. */
  issue(name: string, opts?: { dns?: string[]; ip?: string[]; client?: boolean }): Promise<CertFiles>;
}

export async function makeCa(dir: string, name = 'hoist-test-ca'): Promise<TestCa> {
  const ca = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    ca.key,
    '-out',
    ca.cert,
  ]);
  return {
    ...ca,
    async issue(cn, opts = {}) {
      const files = { cert: join(dir, `${cn}.crt`), key: join(dir, `${cn}.key`) };
      const csr = join(dir, `${cn}.csr`);
      const ext = join(dir, `${cn}.ext`);
      const sans = [...(opts.dns ?? []).map((d) => `DNS:${d}`), ...(opts.ip ?? []).map((i) => `IP:${i}`)];
      await writeFile(
        ext,
        [
          'basicConstraints=CA:FALSE',
          `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
          ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
        ].join('\n'),
      );
      await run('openssl', [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        `/CN=${cn}`,
        '-keyout',
        files.key,
        '-out',
        csr,
      ]);
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        ext,
        '-out',
        files.cert,
      ]);
      return files;
    },
  };
}
