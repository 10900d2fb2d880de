/**
 * Invocation messages as Port puts them on the topics (SPEC §3), signed like Port signs them, for
 * integration tests, the demo and benchmarks.
 */
import { signedMessageBytes } from './signed-message.js';

export interface ActionRunOptions {
  runId: string;
  url: string;
  method?: string;
  synchronized?: boolean;
  agent?: boolean;
  headers?: Record<string, string>;
  properties?: Record<string, unknown>;
  type?: string;
}

export function actionRunMessage(options: ActionRunOptions): Record<string, unknown> {
  const invocationMethod: Record<string, unknown> = {
    type: options.type ?? 'WEBHOOK',
    agent: options.agent ?? true,
    url: options.url,
    synchronized: options.synchronized ?? false,
  };
  if (options.method !== undefined) invocationMethod.method = options.method;
  if (options.headers !== undefined) invocationMethod.headers = options.headers;
  return {
    action: 'deploy_service',
    resourceType: 'run',
    status: 'TRIGGERED',
    trigger: { by: { orgId: 'org_test', userId: 'user_1' }, origin: 'UI', at: '2026-11-20T10:00:00.000Z' },
    context: { entity: 'checkout', blueprint: 'service', runId: options.runId },
    payload: {
      entity: { identifier: 'checkout', title: 'Checkout' },
      action: { identifier: 'deploy_service', title: 'Deploy', invocationMethod, trigger: 'DAY-2', blueprint: 'service' },
      properties: options.properties ?? { version: '1.4.2', environment: 'staging' },
    },
    headers: {},
  };
}

export function nodeRunMessage(options: { runId: string; url: string; synchronized?: boolean; method?: string }): Record<string, unknown> {
  const invocationMethod: Record<string, unknown> = { type: 'WEBHOOK', agent: true, url: options.url, synchronized: options.synchronized ?? true };
  if (options.method !== undefined) invocationMethod.method = options.method;
  return {
    context: { runId: options.runId, workflowRunId: 'wfr_1', nodeConfig: { identifier: 'call-service' } },
    payload: { action: { invocationMethod }, inputs: { service: 'checkout' } },
    headers: {},
  };
}

export function changelogMessage(options: { url: string; agent?: boolean; runId?: string }): Record<string, unknown> {
  return {
    action: 'Create',
    resourceType: 'entity',
    status: 'TRIGGERED',
    trigger: { by: { orgId: 'org_test', userId: 'user_1' }, origin: 'UI', at: '2026-11-20T10:00:00.000Z' },
    context: { entity: 'checkout', blueprint: 'service', runId: options.runId ?? null },
    diff: { before: null, after: { identifier: 'checkout', properties: { tier: 'gold' } } },
    changelogDestination: { type: 'WEBHOOK', agent: options.agent ?? true, url: options.url },
  };
}

/** The bytes Port would put on the runs topic: signed with the org's client secret. */
export function signed(message: Record<string, unknown>, secret: string): string {
  return signedMessageBytes(message, secret, Math.floor(Date.now() / 1000));
}
