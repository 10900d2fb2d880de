/**
 * WEBHOOK_ALLOWED_HOSTS (issue 7): which URLs the agent may send runs to. The agent turns messages
 * from outside into requests inside the network; an allow-list keeps a forged or mistaken URL away
 * from everything else there. Empty: every http(s) URL is allowed (the official agent's behaviour).
 */
export interface TargetPolicy {
  allows(url: URL): boolean;
}

/** One entry: a host pattern (`svc.internal`, `*.corp.internal`, `host:8443`) or a URL prefix. */
type Entry =
  | { kind: 'host'; hostname: string; isWildcard: boolean; port: string | undefined }
  | { kind: 'prefix'; origin: string; path: string };

const HOST_PATTERN = /^(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i;
const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** The entry an allow-list item stands for, or undefined when it is neither a host nor an http(s) URL prefix. */
function parseEntry(item: string): Entry | undefined {
  if (/^https?:\/\//i.test(item)) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      return undefined;
    }
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return undefined;
    return { kind: 'prefix', origin: url.origin, path: url.pathname };
  }
  const match = HOST_PATTERN.exec(item);
  if (!match) return undefined;
  const [, wildcard, hostname, port] = match;
  if (hostname === undefined || (port !== undefined && Number(port) > 65535)) return undefined;
  return { kind: 'host', hostname: hostname.toLowerCase(), isWildcard: wildcard !== undefined, port };
}

/** The items of the list that are not valid entries, for the configuration error. */
export function invalidTargetEntries(items: readonly string[]): string[] {
  return items.filter((item) => parseEntry(item) === undefined);
}

function pathIsUnder(path: string, prefix: string): boolean {
  if (prefix === '/' || path === prefix) return true;
  // `/hooks` covers `/hooks/deploy`, never `/hooksevil`.
  const boundary = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return path.startsWith(boundary);
}

function matches(entry: Entry, url: URL): boolean {
  if (entry.kind === 'prefix') return url.origin === entry.origin && pathIsUnder(url.pathname, entry.path);
  const hostname = url.hostname.toLowerCase();
  const isHostMatch = entry.isWildcard ? hostname.endsWith(`.${entry.hostname}`) : hostname === entry.hostname;
  if (!isHostMatch) return false;
  return entry.port === undefined || entry.port === (url.port || DEFAULT_PORTS[url.protocol]);
}

/** `items` must have passed {@link invalidTargetEntries} (the configuration checks it at start). */
export function createTargetPolicy(items: readonly string[]): TargetPolicy {
  const entries = items.map(parseEntry).filter((entry): entry is Entry => entry !== undefined);
  if (entries.length === 0) return { allows: () => true };
  return { allows: (url) => entries.some((entry) => matches(entry, url)) };
}
