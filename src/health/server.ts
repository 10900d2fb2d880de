/**
 * The health server (issue 6): `GET /healthz` (liveness), `GET /readyz` (readiness) and
 * `GET /metrics` (Prometheus) on HEALTH_PORT. Probes answer 200 or 503 with their checks as JSON,
 * so `kubectl describe` and an operator's curl both say why.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentMetrics } from './metrics.js';
import type { ProbeResult, Probes } from './probes.js';

export interface HealthServer {
  /** The port it listens on (the one chosen by the system when HEALTH_PORT is 0). */
  port: number;
  close(): Promise<void>;
}

export interface HealthServerDeps {
  port: number;
  probes: Probes;
  metrics: Pick<AgentMetrics, 'render' | 'contentType'>;
  /** Hears of a failed metrics rendering; the scrape gets a 500. */
  onError: (error: unknown) => void;
}

function answer(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(body);
}

function answerProbe(response: ServerResponse, result: ProbeResult): void {
  answer(response, result.ok ? 200 : 503, 'application/json', JSON.stringify({ status: result.ok ? 'ok' : 'failing', checks: result.checks }));
}

export async function startHealthServer(deps: HealthServerDeps): Promise<HealthServer> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      answer(response, 405, 'text/plain', 'only GET\n');
      return;
    }
    if (path === '/healthz') answerProbe(response, deps.probes.liveness());
    else if (path === '/readyz') answerProbe(response, deps.probes.readiness());
    else if (path === '/metrics') {
      deps.metrics.render().then(
        (text) => answer(response, 200, deps.metrics.contentType, text),
        (error: unknown) => {
          deps.onError(error);
          answer(response, 500, 'text/plain', 'metrics unavailable\n');
        },
      );
    } else answer(response, 404, 'text/plain', 'not found: try /healthz, /readyz or /metrics\n');
  });
  // Probes are short; an idle kubelet connection must not hold the shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
