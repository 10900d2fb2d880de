import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { folderWith } from '../../test/support/temp-folder.js';
import { createSelfSignedCertificate } from '../../test/support/test-ca.js';
import type { CaSources } from './trusted-cas.js';
import { ConfigError } from '../errors.js';
import { loadTrustedCas } from './trusted-cas.js';

const A = createSelfSignedCertificate('port-agent test CA A');
const B = createSelfSignedCertificate('port-agent test CA B');
const C = createSelfSignedCertificate('port-agent test CA C');
const MOZILLA_ROOT = rootCertificates[0] ?? '';
const BROKEN_BLOCK = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const NONE: CaSources = { files: [], sslCertDirectories: [], directories: [] };

function assertTrustsExactly(ca: string[] | undefined, extra: string[]): void {
  assert.deepEqual(ca?.slice(0, rootCertificates.length), [...rootCertificates], "Node.js's bundled CAs first");
  assert.deepEqual(ca?.slice(rootCertificates.length).map((pem) => pem.trim()), extra.map((pem) => pem.trim()));
}

describe('loadTrustedCas', () => {
  it("keeps Node.js's defaults when no source adds a certificate: no folder, or only copies of bundled CAs", () => {
    assert.deepEqual(loadTrustedCas(NONE), { ca: undefined, added: 0, sources: [], skipped: [] });
    const systemBundle = folderWith({ 'ca-certificates.crt': rootCertificates.slice(0, 5).join('\n') });
    const trusted = loadTrustedCas({ ...NONE, directories: [systemBundle] });
    assert.equal(trusted.ca, undefined);
    assert.deepEqual(trusted.sources, [{ variable: 'AGENT_CA_DIRECTORIES', path: systemBundle, exists: true, certificates: 5, added: 0 }]);
  });

  it('trusts every certificate of the folders\' .crt and .pem files, subfolders included, each once', () => {
    const local = folderWith({ 'corp/a.crt': A, 'b.pem': `# the B CA\n${B}`, 'notes.txt': C });
    const system = folderWith({ 'bundle.pem': `${MOZILLA_ROOT}\n${A}\n${B}`, 'mozilla/c.crt': C });
    const trusted = loadTrustedCas({ ...NONE, directories: [local, join(tmpdir(), 'no-such-ca-folder-1c2d'), system] });
    assertTrustsExactly(trusted.ca, [B, A, C]);
    assert.equal(trusted.added, 3);
    assert.deepEqual(trusted.sources, [
      { variable: 'AGENT_CA_DIRECTORIES', path: local, exists: true, certificates: 2, added: 2 },
      { variable: 'AGENT_CA_DIRECTORIES', path: join(tmpdir(), 'no-such-ca-folder-1c2d'), exists: false, certificates: 0, added: 0 },
      { variable: 'AGENT_CA_DIRECTORIES', path: system, exists: true, certificates: 4, added: 1 },
    ]);
    assert.deepEqual(trusted.skipped, [], 'a missing folder is not a problem');
  });

  it('skips a folder file without a parsable certificate, saying why, and trusts the rest', () => {
    const folder = folderWith({ 'a.crt': A, 'empty.crt': '', 'der.crt': 'binary \u0000 bytes', 'half-broken.pem': `${B}\n${BROKEN_BLOCK}`, 'c.pem': C });
    const trusted = loadTrustedCas({ ...NONE, directories: [folder] });
    assertTrustsExactly(trusted.ca, [A, C]);
    assert.deepEqual(trusted.skipped.map((skipped) => skipped.path), ['der.crt', 'empty.crt', 'half-broken.pem'].map((name) => join(folder, name)));
    assert.match(trusted.skipped[0]?.reason ?? '', /^no PEM certificate \(a DER file needs converting: openssl x509 -inform der/);
    assert.match(trusted.skipped[2]?.reason ?? '', /^certificate 2 of 2 cannot be parsed: .*(asn1|header too long)/i);
    assert.deepEqual(trusted.sources[0], { variable: 'AGENT_CA_DIRECTORIES', path: folder, exists: true, certificates: 2, added: 2 });
  });

  it("reads SSL_CERT_DIR's folders without their subfolders, as OpenSSL does", () => {
    const first = folderWith({ 'a.pem': A, 'sub/c.crt': C });
    const second = folderWith({ 'b.crt': B });
    const trusted = loadTrustedCas({ ...NONE, sslCertDirectories: [first, second] });
    assertTrustsExactly(trusted.ca, [A, B]);
    assert.deepEqual(trusted.sources.map((source) => [source.variable, source.path, source.added]), [
      ['SSL_CERT_DIR', first, 1],
      ['SSL_CERT_DIR', second, 1],
    ]);
  });

  it('trusts the files SSL_CERT_FILE, REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS name, before the folders', () => {
    const files = folderWith({ 'one.pem': `${A}\n${MOZILLA_ROOT}`, 'two.pem': B, 'three.pem': `${A}\n${C}` });
    const folder = folderWith({ 'again.crt': C });
    const trusted = loadTrustedCas({
      files: [
        { variable: 'SSL_CERT_FILE', path: join(files, 'one.pem') },
        { variable: 'REQUESTS_CA_BUNDLE', path: join(files, 'two.pem') },
        { variable: 'NODE_EXTRA_CA_CERTS', path: join(files, 'three.pem') },
      ],
      sslCertDirectories: [],
      directories: [folder],
    });
    assertTrustsExactly(trusted.ca, [A, B, C]);
    assert.deepEqual(trusted.sources.map((source) => [source.variable, source.certificates, source.added]), [
      ['SSL_CERT_FILE', 2, 1],
      ['REQUESTS_CA_BUNDLE', 1, 1],
      ['NODE_EXTRA_CA_CERTS', 2, 1],
      ['AGENT_CA_DIRECTORIES', 1, 0],
    ]);
  });

  it('stops, naming the variable, at a named file that is missing, holds no certificate, or holds one Node.js cannot parse', () => {
    const files = folderWith({ 'empty.pem': 'not a certificate', 'broken.pem': `${A}\n${BROKEN_BLOCK}` });
    const rejects = (variable: 'SSL_CERT_FILE' | 'REQUESTS_CA_BUNDLE' | 'NODE_EXTRA_CA_CERTS', path: string, message: RegExp) =>
      assert.throws(
        () => loadTrustedCas({ ...NONE, files: [{ variable, path }] }),
        (error: unknown) => error instanceof ConfigError && error.variable === variable && message.test(error.message),
      );
    rejects('REQUESTS_CA_BUNDLE', '/nowhere.pem', /^Invalid configuration: REQUESTS_CA_BUNDLE names a file that cannot be read \(\/nowhere\.pem: .*ENOENT/);
    rejects('NODE_EXTRA_CA_CERTS', join(files, 'empty.pem'), /^Invalid configuration: NODE_EXTRA_CA_CERTS names a file without a PEM certificate \(.*empty\.pem\)$/);
    rejects('SSL_CERT_FILE', join(files, 'broken.pem'), /^Invalid configuration: SSL_CERT_FILE names a file with a certificate Node\.js cannot use \(.*broken\.pem: certificate 2 of 2 cannot be parsed: /);
  });
});
