import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { pemCertificates, unreadableReason } from './pem-certificates.js';

const ROOT = rootCertificates[0] ?? '';
/** The same certificate with its base64 in 76-character lines instead of 64. */
function rewrapped(pem: string): string {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\r\n${body.match(/.{1,76}/g)?.join('\r\n') ?? ''}\r\n-----END CERTIFICATE-----`;
}

describe('pemCertificates', () => {
  it('finds every certificate block and ignores the text around them', () => {
    const found = pemCertificates(`subject=CN root\n${ROOT}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n${rootCertificates[1] ?? ''}`);
    assert.deepEqual(found.map((certificate) => certificate.pem), [ROOT, rootCertificates[1]]);
  });

  it('gives the same certificate the same identity however its lines are wrapped', () => {
    const [original] = pemCertificates(ROOT);
    const [again] = pemCertificates(rewrapped(ROOT));
    assert.ok(original && again);
    assert.notEqual(again.pem, original.pem);
    assert.equal(again.identity, original.identity);
    assert.notEqual(pemCertificates(rootCertificates[1] ?? '')[0]?.identity, original.identity);
  });
});

describe('unreadableReason', () => {
  it('accepts a certificate Node.js can parse, rewrapped too', () => {
    assert.equal(unreadableReason({ pem: rewrapped(ROOT), identity: '' }), undefined);
  });

  it("says why Node.js cannot parse a block: bad base64, or base64 that is no certificate", () => {
    assert.match(unreadableReason({ pem: '-----BEGIN CERTIFICATE-----\nnot base64 !\n-----END CERTIFICATE-----', identity: '' }) ?? '', /bad base64 decode/);
    assert.match(unreadableReason({ pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', identity: '' }) ?? '', /asn1|header too long/i);
  });
});
