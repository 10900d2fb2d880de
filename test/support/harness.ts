/**
 * Shared setup of the agent's integration tests: the real broker, a Port stand-in, and the built
 * agent as its own process with an environment pointing at them.
 */
import { startAgent } from './agent-process.js';
import type { AgentLogLine, AgentProcess } from './agent-process.js';
import { startBroker } from './broker.js';
import type { Broker } from './broker.js';
import { disconnectKafkaClients } from './kafka.js';
import { uniqueName } from './kafka.js';
import { startPortStandIn } from './port-stand-in.js';
import type { PortStandIn } from './port-stand-in.js';
import { startWebhookTarget } from './webhook-target.js';
import type { WebhookTarget, WebhookTargetOptions } from './webhook-target.js';

export interface AgentSetup {
  orgId: string;
  runsTopic: string;
  changeLogTopic: string;
  groupId: string;
  env: Record<string, string>;
}

/** A fresh org (so fresh topics and group) wired to the broker and the Port stand-in. */
export function agentSetup(broker: Broker, port: PortStandIn, extra: Record<string, string> = {}): AgentSetup {
  const orgId = uniqueName('org');
  const env: Record<string, string> = {
    PORT_ORG_ID: orgId,
    PORT_CLIENT_ID: port.clientId,
    PORT_CLIENT_SECRET: port.clientSecret,
    PORT_API_BASE_URL: port.url,
    USING_LOCAL_PORT_INSTANCE: 'true',
    KAFKA_CONSUMER_BOOTSTRAP_SERVERS: broker.brokers.join(','),
    // docs/development.md: the mock broker needs a short fetch wait and a session timeout of 6–10 s.
    KAFKA_CONSUMER_SESSION_TIMEOUT_MS: '6000',
    KAFKA_CONSUMER_FETCH_MAX_WAIT_MS: '50',
    WEBHOOK_INVOKER_TIMEOUT: '3',
    LOG_LEVEL: 'DEBUG',
    // Several agents run at once in some tests: each health server on a free port of its own.
    HEALTH_PORT: '0',
    ...extra,
  };
  return { orgId, runsTopic: `${orgId}.runs`, changeLogTopic: `${orgId}.change.log`, groupId: orgId, env };
}

export function isConsuming(line: AgentLogLine): boolean {
  return line.msg === 'joined the consumer group' || line.msg === 'joined the consumer group as a standby (no partitions assigned)';
}

/** The port of the agent's health server (`HEALTH_PORT=0` picks a free one), from its start-up line. */
export async function healthPortOf(agent: AgentProcess): Promise<number> {
  const line = await agent.waitForLog((entry) => entry.msg === 'health server listening');
  if (typeof line.port !== 'number') throw new Error(`the health server line carries no port: ${JSON.stringify(line)}`);
  return line.port;
}

/** The agent's readiness answer: its HTTP status and one line per check. */
export async function readinessOf(healthPort: number): Promise<{ status: number; checks: Record<string, string> }> {
  const response = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
  const body = (await response.json()) as { checks?: Record<string, string> };
  return { status: response.status, checks: body.checks ?? {} };
}

/** Starts the agent and waits until it has joined its consumer group. */
export async function startConsumingAgent(setup: AgentSetup, options: { cwd?: string } = {}): Promise<AgentProcess> {
  const agent = startAgent(setup.env, options);
  await agent.waitForLog(isConsuming, 30_000);
  return agent;
}

/**
 * A suite's real parts: the broker, the Port stand-in, and a webhook target that checks the
 * stand-in's signatures (`target` adds to its options). {@link closeRealParts} closes them; those
 * started before one that fails to start are closed here.
 */
export async function startRealParts(target: Omit<WebhookTargetOptions, 'secret'> = {}): Promise<{ broker: Broker; port: PortStandIn; target: WebhookTarget }> {
  const broker = await startBroker();
  let port: PortStandIn | undefined;
  try {
    port = await startPortStandIn();
    return { broker, port, target: await startWebhookTarget({ ...target, secret: port.clientSecret }) };
  } catch (error) {
    await closeRealParts({ port, broker });
    throw error;
  }
}

/** Stops what a test file started, in order: services, then the Kafka clients, then the broker. */
export async function closeRealParts(parts: { target?: WebhookTarget | undefined; port?: PortStandIn | undefined; broker?: Broker | undefined }): Promise<void> {
  await parts.target?.close();
  await parts.port?.close();
  await disconnectKafkaClients();
  await parts.broker?.stop();
}
