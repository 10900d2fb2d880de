/**
 * The Port client and reporter as the agent wires them (a budget in front of every call), for
 * tests that assemble the pipeline in-process against the Port stand-in.
 */
import { createHttpTransport } from '../../src/net/http-client.js';
import type { Logger } from '../../src/log.js';
import { createPortBudget } from '../../src/reporting/port-budget.js';
import type { PortBudget } from '../../src/reporting/port-budget.js';
import { createPortClient } from '../../src/reporting/port-client.js';
import type { PortClient, PortClientDeps } from '../../src/reporting/port-client.js';
import { createReporter } from '../../src/reporting/reporter.js';
import type { Reporter, RunLogsMode } from '../../src/reporting/reporter.js';
import type { ProxySettings } from '../../src/net/proxy-routing.js';
import type { PortStandIn } from './port-stand-in.js';
import type { HandleOutcome, MessageHandler, SourceMessage } from '../../src/shared/source-message.js';

export interface TestPortClientOptions {
  logger: Logger;
  clientSecret?: string;
  maxCallsPerSecond?: number;
  proxy?: ProxySettings;
  maxSockets?: number;
  now?: PortClientDeps['now'];
  retryPolicy?: PortClientDeps['retryPolicy'];
  outageMaxBackoffMs?: number;
}

export function testPortClient(port: Pick<PortStandIn, 'url' | 'clientId' | 'clientSecret'>, options: TestPortClientOptions): { client: PortClient; budget: PortBudget } {
  const budget = createPortBudget({ maxCallsPerSecond: options.maxCallsPerSecond ?? 0, logger: options.logger });
  const client = createPortClient({
    http: createHttpTransport(port.url, { verifyTls: true, userAgent: 'port-agent', maxSocketsPerHost: options.maxSockets ?? 32, ...(options.proxy ? { proxy: options.proxy } : {}) }),
    clientId: port.clientId,
    clientSecret: options.clientSecret ?? port.clientSecret,
    logger: options.logger,
    budget,
    ...(options.now ? { now: options.now } : {}),
    ...(options.retryPolicy ? { retryPolicy: options.retryPolicy } : {}),
    ...(options.outageMaxBackoffMs === undefined ? {} : { outageMaxBackoffMs: options.outageMaxBackoffMs }),
  });
  return { client, budget };
}

export function testReporter(port: Pick<PortStandIn, 'url' | 'clientId' | 'clientSecret'>, logger: Logger, runLogs: RunLogsMode = 'all'): Reporter {
  const { client, budget } = testPortClient(port, { logger });
  return createReporter({ port: client, budget, detailedLogging: true, runLogs, logger });
}

/** The handler as a test reads it: the outcome, once Port has the run's reports. */
export function untilReported(handler: MessageHandler): (message: SourceMessage) => Promise<HandleOutcome> {
  return async (message) => {
    const { outcome, reported } = await handler(message);
    await reported;
    return outcome;
  };
}
