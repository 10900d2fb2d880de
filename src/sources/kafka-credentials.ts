/**
 * SPEC §2: unless USING_LOCAL_PORT_INSTANCE, brokers and SASL credentials come from the Port API.
 */
import { AgentError } from '../errors.js';
import type { PortClient } from '../reporting/port-client.js';
import type { KafkaCredentials } from './kafka-client-config.js';

const ROUTE = 'GET /v1/kafka-credentials';

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string' && item !== '');
}

export async function fetchKafkaCredentials(port: PortClient): Promise<KafkaCredentials> {
  const result = await port.call('GET', '/v1/kafka-credentials', ROUTE);
  if (!result.ok) throw new AgentError(`could not fetch Kafka credentials from Port: ${result.error.message}`, { retriable: true, cause: result.error });
  const credentials = (result.data as { credentials?: unknown } | undefined)?.credentials;
  if (typeof credentials !== 'object' || credentials === null) {
    throw new AgentError(`Port answered ${ROUTE} without credentials`, { retriable: true });
  }
  const { brokers, username, password } = credentials as Record<string, unknown>;
  if (!isStringArray(brokers) || brokers.length === 0) throw new AgentError(`Port answered ${ROUTE} without brokers`, { retriable: true });
  return {
    brokers,
    username: typeof username === 'string' ? username : undefined,
    password: typeof password === 'string' ? password : undefined,
  };
}
