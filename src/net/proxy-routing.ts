/**
 * Which proxy a request goes through: HTTPS_PROXY for https:// URLs, HTTP_PROXY for
 * http:// ones (and for https:// ones when HTTPS_PROXY is unset), ALL_PROXY for either scheme when
 * neither applies, none for hosts NO_PROXY names. Port API calls (undici's EnvHttpProxyAgent) are
 * given the proxies of {@link proxiesByScheme} and apply the same NO_PROXY rules, so webhook
 * requests (axios) and Port API calls always agree on the route. Pure: the settings come in.
 */
export interface ProxySettings {
  httpProxy: string | undefined;
  httpsProxy: string | undefined;
  /** Python's requests reads ALL_PROXY as the proxy of any scheme that has none of its own. */
  allProxy: string | undefined;
  /** Comma- or space-separated hosts, `.domain` or `*.domain` for subdomains, `host:port`, or `*`. */
  noProxy: string;
}

interface NoProxyEntry {
  hostname: string;
  /** 0: any port. */
  port: number;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

function parseNoProxy(noProxy: string): NoProxyEntry[] {
  return noProxy
    .split(/[,\s]/)
    .filter((entry) => entry !== '')
    .map((entry) => {
      const withPort = /^(.+):(\d+)$/.exec(entry);
      return { hostname: (withPort?.[1] ?? entry).replace(/^\*?\./, '').toLowerCase(), port: withPort ? Number(withPort[2]) : 0 };
    });
}

function bypasses(url: URL, entries: readonly NoProxyEntry[]): boolean {
  // Keeps the brackets of an IPv6 literal, as undici does.
  const hostname = url.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number(url.port) || DEFAULT_PORTS[url.protocol] || 0;
  return entries.some((entry) => (entry.port === 0 || entry.port === port) && (hostname === entry.hostname || hostname.endsWith(`.${entry.hostname}`)));
}

/** The proxy of each scheme, before NO_PROXY: the scheme's own, then (https) the http one, then ALL_PROXY. */
export function proxiesByScheme(settings: ProxySettings): { http: string | undefined; https: string | undefined } {
  const http = settings.httpProxy ?? settings.allProxy;
  return { http, https: settings.httpsProxy ?? http };
}

/** The proxy URL for `url`, or undefined to connect directly. */
export function createProxyRouter(settings: ProxySettings): (url: URL) => string | undefined {
  const isEverythingDirect = settings.noProxy.trim() === '*';
  const entries = parseNoProxy(settings.noProxy);
  const proxies = proxiesByScheme(settings);
  return (url) => {
    if (isEverythingDirect || bypasses(url, entries)) return undefined;
    return url.protocol === 'https:' ? proxies.https : proxies.http;
  };
}

export function hasProxy(settings: ProxySettings): boolean {
  const proxies = proxiesByScheme(settings);
  return proxies.http !== undefined || proxies.https !== undefined;
}
