/**
 * WEBHOOK_ALLOWED_HOSTS entries as the configuration checks them at start; delivery's target
 * policy (delivery/target-policy.ts) matches URLs against the same parsed entries.
 */
/** One entry: a host pattern (`svc.internal`, `*.corp.internal`, `host:8443`) or a URL prefix. */
export type AllowedTarget =
  | { kind: 'host'; hostname: string; isWildcard: boolean; port: string | undefined }
  | { kind: 'prefix'; origin: string; path: string };

const HOST_PATTERN = /^(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i;

/** The entry an allow-list item stands for, or undefined when it is neither a host nor an http(s) URL prefix. */
export function parseAllowedTarget(item: string): AllowedTarget | undefined {
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
  return items.filter((item) => parseAllowedTarget(item) === undefined);
}
