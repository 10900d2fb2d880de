/** The delivery stage with test-sized settings, for in-process tests against real servers. */
import { createSemaphore } from '../../src/concurrency/semaphore.js';
import { createHostGuard } from '../../src/delivery/host-guard.js';
import { createDeliverer } from '../../src/delivery/send.js';
import type { Deliverer } from '../../src/delivery/send.js';
import { createTargetPolicy } from '../../src/delivery/target-policy.js';
import { createHttpClient } from '../../src/net/http-client.js';
import type { ProxySettings } from '../../src/net/proxy-routing.js';
import { trustedSecureContext } from '../../src/trust/secure-context.js';

export interface TestDelivererOptions {
  secret: string;
  timeoutMs?: number;
  verifyTls?: boolean;
  retries?: number;
  maxInFlight?: number;
  perHostLimit?: number;
  /** WEBHOOK_ALLOWED_HOSTS entries; absent or empty: any URL. */
  allowedTargets?: string[] | undefined;
  proxy?: ProxySettings;
  /** The CAs to trust, built into one context as the agent does; absent: Node's defaults. */
  ca?: string[] | undefined;
}

export function testDeliverer(options: TestDelivererOptions): Deliverer {
  return createDeliverer({
    http: createHttpClient({ verifyTls: options.verifyTls ?? true, userAgent: 'port-agent', maxSocketsPerHost: 100, proxy: options.proxy, secureContext: trustedSecureContext(options.ca) }),
    secret: options.secret,
    timeoutMs: options.timeoutMs ?? 5000,
    retryPolicy: { retries: options.retries ?? 0, minTimeoutMs: 10, maxTimeoutMs: 50, maxRetryTimeMs: 10_000 },
    inFlight: createSemaphore(options.maxInFlight ?? 100),
    hosts: createHostGuard({ perHostLimit: options.perHostLimit ?? 100 }),
    targets: createTargetPolicy(options.allowedTargets ?? []),
  });
}
