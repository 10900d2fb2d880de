import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostCircuit } from '../shared/circuit-state.js';
import { createAgentMetrics } from './metrics.js';
import type { MetricSources } from './metrics.js';
import { NO_SOURCES } from './scrape-gauges.js';

/** The value of the one sample `name{labels}` in a text exposition, if there is one. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}${labels} `) || (labels === '' && candidate.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function sources(overrides: Partial<MetricSources>): MetricSources {
  return { ...NO_SOURCES, isReady: () => true, ...overrides };
}

describe('createAgentMetrics', () => {
  it("keeps Node's default metrics under their standard names, for stock Node.js dashboards", async () => {
    const text = await createAgentMetrics({ version: '1.2.3' }).render();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_active_handles_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.doesNotMatch(text, /^port_agent_(process|nodejs)_/m);
  });

  it('gives the first target hosts series of their own and counts the rest as other', async () => {
    const metrics = createAgentMetrics({ version: '1' }, { maxHostLabels: 2 });
    metrics.requestAttempted('a.internal', '2xx', 0.01);
    metrics.requestAttempted('b.internal:8443', '5xx', 0.02);
    metrics.requestAttempted('c.internal', '2xx', 0.03);
    metrics.requestAttempted('d.internal', '2xx', 0.04);
    metrics.requestAttempted('a.internal', '2xx', 0.05);
    metrics.requestRetried('b.internal:8443');
    metrics.requestRetried('d.internal');
    const text = await metrics.render();
    assert.equal(sample(text, 'port_agent_webhook_requests_total', '{host="a.internal",status_class="2xx"}'), 2);
    assert.equal(sample(text, 'port_agent_webhook_requests_total', '{host="b.internal:8443",status_class="5xx"}'), 1);
    assert.equal(sample(text, 'port_agent_webhook_requests_total', '{host="other",status_class="2xx"}'), 2);
    assert.equal(sample(text, 'port_agent_webhook_request_duration_seconds_count', '{host="other"}'), 2);
    assert.equal(sample(text, 'port_agent_webhook_retries_total', '{host="b.internal:8443"}'), 1);
    assert.equal(sample(text, 'port_agent_webhook_retries_total', '{host="other"}'), 1);
    assert.doesNotMatch(text, /c\.internal|d\.internal/);
  });

  it('shows each kept circuit, the worst of those counted as other, and drops a host once delivery forgets it', async () => {
    const metrics = createAgentMetrics({ version: '1' }, { maxHostLabels: 1 });
    let circuits: HostCircuit[] = [
      { host: 'down.internal', state: 'open' },
      { host: 'flaky.internal', state: 'half-open' },
      { host: 'slow.internal', state: 'open' },
    ];
    metrics.observe(sources({ circuits: () => circuits }));
    let text = await metrics.render();
    assert.equal(sample(text, 'port_agent_webhook_circuit_state', '{host="down.internal"}'), 2);
    assert.equal(sample(text, 'port_agent_webhook_circuit_state', '{host="other"}'), 2);
    circuits = [{ host: 'down.internal', state: 'closed' }];
    text = await metrics.render();
    assert.equal(sample(text, 'port_agent_webhook_circuit_state', '{host="down.internal"}'), 0);
    assert.equal(sample(text, 'port_agent_webhook_circuit_state', '{host="other"}'), undefined);
  });

  it('reads readiness, the backlog and the budget queue at scrape time', async () => {
    const metrics = createAgentMetrics({ version: '1' });
    let ready = false;
    metrics.observe(sources({ isReady: () => ready, brokerBacklog: () => [{ topic: 'org.runs', partition: 3, lag: 42 }], portCallsWaiting: () => 7 }));
    assert.equal(sample(await metrics.render(), 'port_agent_ready'), 0);
    ready = true;
    const text = await metrics.render();
    assert.equal(sample(text, 'port_agent_ready'), 1);
    assert.equal(sample(text, 'port_agent_consumer_backlog', '{topic="org.runs",partition="3"}'), 42);
    assert.equal(sample(text, 'port_agent_port_api_calls_waiting'), 7);
  });

  it('starts the message counts of the topics it is given at 0 for every outcome', async () => {
    const text = await createAgentMetrics({ version: '1' }, { topics: ['org.runs'] }).render();
    for (const outcome of ['delivered', 'failed', 'skipped', 'dropped']) {
      assert.equal(sample(text, 'port_agent_messages_total', `{topic="org.runs",outcome="${outcome}"}`), 0, outcome);
    }
  });

  it('times Port calls by route and runs from production to final report by outcome', async () => {
    const metrics = createAgentMetrics({ version: '1' });
    metrics.portCall('PATCH /v1/actions/runs/:runId', 200, 0.08);
    metrics.portCall('PATCH /v1/actions/runs/:runId', undefined, 30);
    metrics.runEnded('delivered', 1.5);
    metrics.runEnded('failed', -2);
    const text = await metrics.render();
    assert.equal(sample(text, 'port_agent_port_api_call_duration_seconds_count', '{route="PATCH /v1/actions/runs/:runId"}'), 2);
    assert.equal(sample(text, 'port_agent_port_api_call_duration_seconds_bucket', '{le="0.1",route="PATCH /v1/actions/runs/:runId"}'), 1);
    assert.equal(sample(text, 'port_agent_port_api_errors_total', '{route="PATCH /v1/actions/runs/:runId"}'), 1);
    assert.equal(sample(text, 'port_agent_run_duration_seconds_sum', '{outcome="delivered"}'), 1.5);
    assert.equal(sample(text, 'port_agent_run_duration_seconds_sum', '{outcome="failed"}'), 0, 'a clock set back counts as no time, not a negative one');
  });
});
