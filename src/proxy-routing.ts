/**
 * Which proxy a request goes through (SPEC §1): HTTPS_PROXY for https:// URLs, HTTP_PROXY for
 * http:// ones (and for https:// ones when HTTPS_PROXY is unset), none for hosts NO_PROXY names.
 * The rules are undici's EnvHttpProxyAgent's, which carries the Port API calls, so webhook
 * requests (axios) and Port API calls always agree on the route. Pure: the settings come in.
 */
export interface ProxySettings {
  httpProxy: string | undefined;
  httpsProxy: string | undefined;
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

/** The proxy URL for `url`, or undefined to connect directly. */
export function createProxyRouter(settings: ProxySettings): (url: URL) => string | undefined {
  const isEverythingDirect = settings.noProxy.trim() === '*';
  const entries = parseNoProxy(settings.noProxy);
  const httpsProxy = settings.httpsProxy ?? settings.httpProxy;
  return (url) => {
    if (isEverythingDirect || bypasses(url, entries)) return undefined;
    return url.protocol === 'https:' ? httpsProxy : settings.httpProxy;
  };
}

export function hasProxy(settings: ProxySettings): boolean {
  return settings.httpProxy !== undefined || settings.httpsProxy !== undefined;
}
