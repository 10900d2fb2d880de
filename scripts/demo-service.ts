/**
 * The demo's sample internal service: a real HTTP server on loopback (the tests' webhook target)
 * with one fixed answer per path, so each sample run shows one way a delivery can end.
 */
import { startWebhookTarget } from '../test/support/webhook-target.js';
import type { ReceivedRequest, TargetResponse, WebhookTarget } from '../test/support/webhook-target.js';

/** What the service answers on one path. */
export interface ServiceAnswer {
  status: number;
  body: object;
  delayMs?: number;
}

/** The answers by path; any other path gets 404. */
export const SERVICE_ANSWERS: Readonly<Record<string, ServiceAnswer>> = {
  '/deploy': { status: 200, body: { deployed: true, version: '1.4.2', url: 'https://checkout.staging.internal' }, delayMs: 50 },
  '/provision': { status: 202, body: { accepted: true, ticket: 'PRV-1042' } },
  '/flaky': { status: 500, body: { error: 'database connection pool exhausted' } },
  '/node': { status: 201, body: { ticket: 'CHG-7', created: true } },
  '/changelog': { status: 200, body: { received: true } },
};

const NOT_FOUND: ServiceAnswer = { status: 404, body: { error: 'no such endpoint' } };

/** The answer the service gives on `path`. */
export function serviceAnswer(path: string): ServiceAnswer {
  return SERVICE_ANSWERS[path] ?? NOT_FOUND;
}

export interface DemoServiceOptions {
  /** The HMAC key the agent signs with (`PORT_CLIENT_SECRET`), to verify each request. */
  secret: string;
  /** Called for each request, with the status about to be answered. */
  onRequest?: (request: ReceivedRequest, status: number) => void;
}

/** Starts the sample service on a free loopback port. */
export function startDemoService(options: DemoServiceOptions): Promise<WebhookTarget> {
  return startWebhookTarget({
    secret: options.secret,
    respond: (request): TargetResponse => {
      const answer = serviceAnswer(request.path);
      options.onRequest?.(request, answer.status);
      return { status: answer.status, body: answer.body, delayMs: answer.delayMs ?? 0 };
    },
  });
}
