import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { ConfigError } from './errors.js';
import { loadTrustedCas } from './tls-trust.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';

describe('loadTrustedCas', () => {
  it("keeps Node's defaults when no extra file is configured", () => {
    assert.equal(loadTrustedCas([]), undefined);
  });

  it('trusts the bundled Mozilla CAs and every certificate of both files', () => {
    const files: Record<string, string> = { '/a.pem': `junk\n${PEM}\n${PEM.replace('MIIB', 'MIIC')}\n`, '/b.pem': PEM.replace('MIIB', 'MIID') };
    const cas = loadTrustedCas(
      [
        { variable: 'NODE_EXTRA_CA_CERTS', path: '/a.pem' },
        { variable: 'REQUESTS_CA_BUNDLE', path: '/b.pem' },
      ],
      (path) => files[path] ?? '',
    );
    assert.equal(cas?.length, rootCertificates.length + 3);
    assert.deepEqual(cas?.slice(-3).map((pem) => pem.split('\n')[1]), ['MIIB', 'MIIC', 'MIID']);
  });

  it('names the variable of a missing file or a file without a certificate', () => {
    assert.throws(
      () => loadTrustedCas([{ variable: 'REQUESTS_CA_BUNDLE', path: '/nowhere.pem' }]),
      (error: unknown) => error instanceof ConfigError && error.variable === 'REQUESTS_CA_BUNDLE' && /cannot be read \(\/nowhere\.pem: .*ENOENT/.test(error.message),
    );
    assert.throws(
      () => loadTrustedCas([{ variable: 'NODE_EXTRA_CA_CERTS', path: '/empty.pem' }], () => 'not a certificate'),
      /NODE_EXTRA_CA_CERTS names a file without a PEM certificate \(\/empty\.pem\)/,
    );
  });
});
