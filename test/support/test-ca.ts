/**
 * A certificate authority made for one test run (no key material lives in the repository) and a
 * server certificate it signed for `localhost` and 127.0.0.1, with openssl (npm test installs it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  /** The CA certificate (PEM) and the file holding it, for NODE_EXTRA_CA_CERTS or REQUESTS_CA_BUNDLE. */
  caPem: string;
  caPath: string;
  /** A server key and certificate signed by the CA, for `localhost` and 127.0.0.1. */
  server: { key: string; cert: string };
}

const VALID_DAYS = '2';

export function createTestCa(): TestCa {
  const directory = mkdtempSync(join(tmpdir(), 'test-ca-'));
  const path = (name: string): string => join(directory, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' });
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', VALID_DAYS, '-subj', '/CN=port-agent test CA', '-keyout', path('ca.key'), '-out', path('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', path('server.key'), '-out', path('server.csr'));
  writeFileSync(path('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', path('server.csr'), '-CA', path('ca.pem'), '-CAkey', path('ca.key'), '-CAcreateserial', '-days', VALID_DAYS, '-out', path('server.pem'), '-extfile', path('server.ext'));
  return {
    caPem: readFileSync(path('ca.pem'), 'utf8'),
    caPath: path('ca.pem'),
    server: { key: readFileSync(path('server.key'), 'utf8'), cert: readFileSync(path('server.pem'), 'utf8') },
  };
}

/**
 * A self-signed certificate (PEM) for `commonName`, without its key: a CA to find in a file or
 * folder. EC keys, so that each takes milliseconds.
 */
export function createSelfSignedCertificate(commonName: string): string {
  const directory = mkdtempSync(join(tmpdir(), 'test-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', VALID_DAYS, '-subj', `/CN=${commonName}`,
      '-keyout', join(directory, 'key.pem'), '-out', join(directory, 'cert.pem')], { stdio: 'ignore' });
    return readFileSync(join(directory, 'cert.pem'), 'utf8');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
