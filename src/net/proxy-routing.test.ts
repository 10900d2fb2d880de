import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createProxyRouter, hasProxy } from './proxy-routing.js';

const HTTP = 'http://plain.proxy:3128';
const HTTPS = 'http://tls.proxy:3128';
const ALL = 'http://any.proxy:3128';
const NONE = { httpProxy: undefined, httpsProxy: undefined, allProxy: undefined, noProxy: '' };
const route = (settings: Partial<Parameters<typeof createProxyRouter>[0]>, url: string) => createProxyRouter({ ...NONE, ...settings })(new URL(url));

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

  it('uses ALL_PROXY for either scheme only when no scheme-specific proxy applies', () => {
    assert.equal(route({ allProxy: ALL }, 'https://svc.internal/x'), ALL);
    assert.equal(route({ allProxy: ALL }, 'http://svc.internal/x'), ALL);
    assert.equal(route({ allProxy: ALL, httpsProxy: HTTPS }, 'https://svc.internal/x'), HTTPS);
    assert.equal(route({ allProxy: ALL, httpsProxy: HTTPS }, 'http://svc.internal/x'), ALL, 'HTTPS_PROXY does not cover http');
    assert.equal(route({ allProxy: ALL, httpProxy: HTTP }, 'https://svc.internal/x'), HTTP, 'HTTP_PROXY covers https before ALL_PROXY');
    assert.equal(route({ allProxy: ALL, httpProxy: HTTP }, 'http://svc.internal/x'), HTTP);
  });

  it('lets NO_PROXY bypass ALL_PROXY too', () => {
    assert.equal(route({ allProxy: ALL, noProxy: 'svc.internal' }, 'https://svc.internal/x'), undefined);
    assert.equal(route({ allProxy: ALL, noProxy: '*' }, 'http://other.internal/x'), undefined);
    assert.equal(route({ allProxy: ALL, noProxy: 'svc.internal' }, 'https://other.internal/x'), ALL);
  });
});

describe('hasProxy', () => {
  it('counts ALL_PROXY as a proxy', () => {
    assert.equal(hasProxy(NONE), false);
    assert.equal(hasProxy({ ...NONE, allProxy: ALL }), true);
    assert.equal(hasProxy({ ...NONE, httpsProxy: HTTPS }), true);
  });
});
