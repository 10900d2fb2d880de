/**
 * WEBHOOK_ALLOWED_HOSTS (issue 7): which URLs the agent may send runs to. The agent turns messages
 * from outside into requests inside the network; an allow-list keeps a forged or mistaken URL away
 * from everything else there. Empty: every http(s) URL is allowed (the official agent's behaviour).
 */
import { parseAllowedTarget } from '../config/allowed-targets.js';
import type { AllowedTarget } from '../config/allowed-targets.js';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

export interface TargetPolicy {
  allows(url: URL): boolean;
}

function pathIsUnder(path: string, prefix: string): boolean {
  if (prefix === '/' || path === prefix) return true;
  // `/hooks` covers `/hooks/deploy`, never `/hooksevil`.
  const boundary = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return path.startsWith(boundary);
}

function matches(entry: AllowedTarget, url: URL): boolean {
  if (entry.kind === 'prefix') return url.origin === entry.origin && pathIsUnder(url.pathname, entry.path);
  const hostname = url.hostname.toLowerCase();
  const isHostMatch = entry.isWildcard ? hostname.endsWith(`.${entry.hostname}`) : hostname === entry.hostname;
  if (!isHostMatch) return false;
  return entry.port === undefined || entry.port === (url.port || DEFAULT_PORTS[url.protocol]);
}

/** `items` must have passed `invalidTargetEntries` (the configuration checks it at start). */
export function createTargetPolicy(items: readonly string[]): TargetPolicy {
  const entries = items.map(parseAllowedTarget).filter((entry): entry is AllowedTarget => entry !== undefined);
  if (entries.length === 0) return { allows: () => true };
  return { allows: (url) => entries.some((entry) => matches(entry, url)) };
}
