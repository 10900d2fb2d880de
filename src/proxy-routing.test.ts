import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createProxyRouter } from './proxy-routing.js';

const HTTP = 'http://plain.proxy:3128';
const HTTPS = 'http://tls.proxy:3128';
const route = (settings: Partial<Parameters<typeof createProxyRouter>[0]>, url: string) =>
  createProxyRouter({ httpProxy: undefined, httpsProxy: undefined, noProxy: '', ...settings })(new URL(url));

describe('createProxyRouter', () => {
  it('sends https through HTTPS_PROXY and http through HTTP_PROXY', () => {
    assert.equal(route({ httpProxy: HTTP, httpsProxy: HTTPS }, 'https://svc.internal/x'), HTTPS);
    assert.equal(route({ httpProxy: HTTP, httpsProxy: HTTPS }, 'http://svc.internal/x'), HTTP);
  });

  it('uses HTTP_PROXY for https when HTTPS_PROXY is unset, and no proxy for http when only HTTPS_PROXY is set', () => {
    assert.equal(route({ httpProxy: HTTP }, 'https://svc.internal/x'), HTTP);
    assert.equal(route({ httpsProxy: HTTPS }, 'http://svc.internal/x'), undefined);
  });

  it('connects directly to hosts NO_PROXY names, subdomains and ports included', () => {
    const settings = { httpProxy: HTTP, httpsProxy: HTTPS, noProxy: 'localhost, .svc.cluster.local *.corp.internal,billing.internal:8443,[::1]' };
    assert.equal(route(settings, 'http://localhost:8080/'), undefined);
    assert.equal(route(settings, 'https://api.ns.svc.cluster.local/'), undefined);
    assert.equal(route(settings, 'https://svc.cluster.local/'), undefined, 'the domain itself too');
    assert.equal(route(settings, 'https://a.corp.internal/'), undefined);
    assert.equal(route(settings, 'https://xcorp.internal/'), HTTPS, 'not a subdomain');
    assert.equal(route(settings, 'https://billing.internal:8443/'), undefined);
    assert.equal(route(settings, 'https://billing.internal/'), HTTPS, 'another port');
    assert.equal(route(settings, 'http://[::1]:9000/'), undefined);
    assert.equal(route(settings, 'https://api.getport.io/v1'), HTTPS);
  });

  it('connects directly to everything with NO_PROXY=*, and without proxies', () => {
    assert.equal(route({ httpProxy: HTTP, noProxy: '*' }, 'https://api.getport.io/'), undefined);
    assert.equal(route({}, 'https://api.getport.io/'), undefined);
  });
});
