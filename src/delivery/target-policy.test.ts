import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { invalidTargetEntries } from '../config/allowed-targets.js';
import { createTargetPolicy } from './target-policy.js';

const allows = (items: string[], url: string): boolean => createTargetPolicy(items).allows(new URL(url));

describe('createTargetPolicy (WEBHOOK_ALLOWED_HOSTS)', () => {
  it('allows everything when the list is empty', () => {
    assert.equal(allows([], 'http://anything.example:1234/x'), true);
  });

  it('matches host names exactly, in any case, on any port unless one is given', () => {
    const list = ['deploy.internal', 'Billing.Internal:8443'];
    assert.equal(allows(list, 'https://deploy.internal/run'), true);
    assert.equal(allows(list, 'http://DEPLOY.internal:9000/run'), true);
    assert.equal(allows(list, 'https://evil-deploy.internal/run'), false);
    assert.equal(allows(list, 'https://deploy.internal.evil.com/run'), false);
    assert.equal(allows(list, 'https://billing.internal:8443/'), true);
    assert.equal(allows(list, 'https://billing.internal/'), false, 'port 443 is not 8443');
  });

  it('matches subdomains with a *. pattern, default ports included', () => {
    const list = ['*.corp.internal', '*.svc.cluster.local:443'];
    assert.equal(allows(list, 'http://a.corp.internal/'), true);
    assert.equal(allows(list, 'http://a.b.corp.internal/'), true);
    assert.equal(allows(list, 'http://corp.internal/'), false, 'the bare domain is not a subdomain');
    assert.equal(allows(list, 'http://xcorp.internal/'), false);
    assert.equal(allows(list, 'https://api.svc.cluster.local/'), true);
    assert.equal(allows(list, 'http://api.svc.cluster.local/'), false, 'port 80 is not 443');
  });

  it('matches URL prefixes on origin and whole path segments', () => {
    const list = ['https://api.internal/hooks', 'http://127.0.0.1:8080/'];
    assert.equal(allows(list, 'https://api.internal/hooks'), true);
    assert.equal(allows(list, 'https://api.internal/hooks/deploy?x=1'), true);
    assert.equal(allows(list, 'https://api.internal/hooksevil'), false);
    assert.equal(allows(list, 'http://api.internal/hooks/deploy'), false, 'another scheme is another origin');
    assert.equal(allows(list, 'https://api.internal:444/hooks'), false);
    assert.equal(allows(list, 'http://127.0.0.1:8080/anything'), true);
    assert.equal(allows(list, 'http://127.0.0.1:8081/anything'), false);
  });

  it('matches IPv6 literals', () => {
    assert.equal(allows(['[::1]:8080'], 'http://[::1]:8080/x'), true);
    assert.equal(allows(['[::1]:8080'], 'http://[::2]:8080/x'), false);
  });

  it('names the entries that are neither hosts nor http(s) URL prefixes', () => {
    assert.deepEqual(invalidTargetEntries(['ok.internal', 'ftp://files.internal/', 'bad host', 'https://x.internal/?q=1', 'host:99999', '*.ok.internal', 'https://user:pw@x.internal/']), [
      'ftp://files.internal/',
      'bad host',
      'https://x.internal/?q=1',
      'host:99999',
      'https://user:pw@x.internal/',
    ]);
  });
});
