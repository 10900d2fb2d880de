/**
 * The agent built in-process through `createAgent`, as the `port-agent` command builds it: the same
 * configuration, stages and health server, with a real broker, the Port stand-in and a real service.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createAgent } from '../../src/agent.js';
import type { Agent } from '../../src/agent.js';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { Broker } from '../support/broker.js';
import { agentSetup, closeRealParts, startRealParts } from '../support/harness.js';
import { produce } from '../support/kafka.js';
import { capturingLogger } from '../support/log-lines.js';
import { actionRunMessage, signed } from '../support/messages.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { folderWith } from '../support/temp-folder.js';
import { waitFor } from '../support/wait.js';
import type { WebhookTarget } from '../support/webhook-target.js';

describe('createAgent builds the agent the port-agent command runs', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    ({ broker, port, target } = await startRealParts());
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  it('consumes, delivers and reports a run, answers its probes, and stops when told', async () => {
    const setup = agentSetup(broker, port);
    const logs = capturingLogger('info');
    let gaveUp = false;
    const agent: Agent = await createAgent(loadConfig(setup.env), { logger: logs.logger, env: setup.env, workingDirectory: folderWith({}), onGiveUp: () => (gaveUp = true) });
    try {
      await agent.start();
      await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_in_process', url: `${target.url}/in-process` }), port.clientSecret) }]);
      await waitFor(() => port.actionRunLogs('r_in_process').includes(RUN_LOG.actionFinished), { timeoutMs: 30_000, description: 'the run reported finished' });
      assert.equal(target.requests.filter((request) => request.path === '/in-process').length, 1);
      const ready = await fetch(`http://127.0.0.1:${agent.healthPort}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
    } finally {
      await agent.stop();
      await agent.close();
    }
    // Closed by `close`, not left to the idle timeouts (2 s for services, 4 s for Port).
    await waitFor(async () => (await port.openConnections()) + (await target.openConnections()) === 0, {
      timeoutMs: 1_000,
      description: 'the agent closed its connections to Port and the service',
    });
    assert.equal(gaveUp, false);
    const messages = logs.lines.map((line) => line.msg);
    for (const expected of ['payload mapping loaded', 'port-agent starting', 'health server listening', 'joined the consumer group', 'request delivered']) {
      assert.ok(messages.includes(expected), `logged "${expected}"`);
    }
    const delivered = logs.lines.find((line) => line.msg === 'request delivered');
    assert.equal(delivered?.runId, 'r_in_process');
    assert.equal(delivered?.stage, 'pipeline');
  });

  it('refuses a health port already in use with a ConfigError naming HEALTH_PORT, and starts nothing', async () => {
    const occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '0.0.0.0', resolve));
    try {
      const { port: taken } = occupied.address() as AddressInfo;
      const setup = agentSetup(broker, port, { HEALTH_PORT: String(taken) });
      const logs = capturingLogger('info');
      await assert.rejects(
        createAgent(loadConfig(setup.env), { logger: logs.logger, env: setup.env, workingDirectory: folderWith({}), onGiveUp: () => undefined }),
        (error: unknown) => error instanceof ConfigError && error.variable === 'HEALTH_PORT' && /HEALTH_PORT \d+ cannot be used/.test(error.message),
      );
      assert.equal(logs.lines.some((line) => line.msg === 'joined the consumer group'), false);
    } finally {
      await new Promise<void>((resolve) => occupied.close(() => resolve()));
    }
  });
});
