/**
 * The chart's monitoring, checked against a running agent: the Grafana dashboard's queries are
 * valid PromQL naming only metrics the agent exports, the PrometheusRule passes `promtool check
 * rules`, and `promtool test rules` makes each alert fire (and stay quiet when all is well) on
 * series taken from a real scrape of the agent, with the labels Prometheus adds through the
 * chart's ServiceMonitor.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { AgentProcess } from '../support/agent-process.js';
import { exposedNames, samplesOf } from '../support/exposition.js';
import type { ExposedSample } from '../support/exposition.js';
import { agentSetup, closeRealParts, healthPortOf, startConsumingAgent, startRealParts } from '../support/harness.js';
import type { AgentSetup } from '../support/harness.js';
import type { Rendered } from '../support/helm-chart.js';
import { CHART, FIRST_RENDER_TIMEOUT_MS, NAMESPACE, RELEASE, field, list, record, render, renderFails, compileRenderer } from '../support/helm-chart.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import type { Broker } from '../support/broker.js';
import { folderWith } from '../support/temp-folder.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';

const MONITORING = ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.grafanaDashboard.enabled=true', '--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.prometheusRule.alertLabels.team=platform'];
/** The circuit breaker's default: this many failures in a row open a host's circuit. */
const FAILURES_TO_OPEN_A_CIRCUIT = 5;

function promtool(args: readonly string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

// ---- the dashboard's queries ----

/** Grafana's variables, as Grafana puts them into a query before Prometheus sees it. */
function withGrafanaVariables(query: string): string {
  return query.replaceAll('$__rate_interval', '5m').replace(/\$(namespace|job|instance)\b/g, '.*');
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL query selects: the identifiers left once strings, label matchers,
 * grouping clauses and ranges are gone, other than functions (followed by a bracket) and keywords.
 */
function metricNamesIn(query: string): string[] {
  const bare = withGrafanaVariables(query)
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  const names: string[] = [];
  for (const match of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice((match.index ?? 0) + match[0].length);
    if (/^\s*\(/.test(after) || PROMQL_WORDS.has(match[0].toLowerCase())) continue;
    names.push(match[0]);
  }
  return names;
}

interface DashboardQuery {
  where: string;
  expr: string;
}

function dashboardQueries(dashboard: unknown): { panels: DashboardQuery[]; variables: DashboardQuery[] } {
  const panels = list(field(dashboard, 'panels')).flatMap((panel) =>
    field(panel, 'type') === 'row' ? [] : list(field(panel, 'targets')).map((target) => ({ where: String(field(panel, 'title')), expr: String(field(target, 'expr')) })),
  );
  const variables = list(field(dashboard, 'templating', 'list'))
    .filter((variable) => field(variable, 'type') === 'query')
    .map((variable) => ({ where: `variable ${String(field(variable, 'name'))}`, expr: String(field(variable, 'query', 'query')) }));
  return { panels, variables };
}

// ---- promtool's rule tests ----

/** A series as `promtool test rules` takes it: `name{label="value",…}`. */
function seriesText(name: string, labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  return `${name}{${pairs.join(',')}}`;
}

interface RuleAlert {
  alert: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The annotations as Prometheus fills them in for an alert with `labels`; they use only `$labels`. */
function expandedAnnotations(rule: RuleAlert, labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(rule.annotations).map(([key, text]) => {
      const expanded = text.replace(/\{\{ \$labels\.([a-zA-Z_]+) \}\}/g, (_match, label: string) => labels[label] ?? '');
      assert.doesNotMatch(expanded, /\{\{/, `${rule.alert} ${key}: only {{ $labels.x }} is expected in annotations`);
      return [key, expanded];
    }),
  );
}

describe('the chart\'s monitoring over a running agent\'s metrics', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  let downService: WebhookTarget;
  let setup: AgentSetup;
  let agent: AgentProcess;
  let scrape: string;
  let rendered: Rendered;
  let folder: string;

  before(async () => {
    await compileRenderer();
    rendered = await render(MONITORING);
    folder = folderWith({});

    ({ broker, port, target } = await startRealParts());
    downService = await startWebhookTarget({ secret: port.clientSecret, respond: () => ({ status: 503 }) });
    // No retries: each failing run is one failure of its host, so a few runs open its circuit.
    setup = agentSetup(broker, port, { WEBHOOK_MAX_RETRIES: '0' });
    agent = await startConsumingAgent(setup);
    const healthPort = await healthPortOf(agent);
    const failing = Array.from({ length: FAILURES_TO_OPEN_A_CIRCUIT }, (_, index) => `r_down_${index}`);
    await produce(broker.brokers, setup.runsTopic, [
      { key: 'ok', value: signed(actionRunMessage({ runId: 'r_up', url: `${target.url}/deploy`, synchronized: true }), port.clientSecret) },
      ...failing.map((runId) => ({ key: runId, value: signed(actionRunMessage({ runId, url: `${downService.url}/deploy`, synchronized: true }), port.clientSecret) })),
    ]);
    scrape = await waitFor(async () => {
      const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
      const ended = samplesOf(text, 'port_agent_run_duration_seconds_count').reduce((total, sample) => total + sample.value, 0);
      const ready = samplesOf(text, 'port_agent_ready')[0]?.value === 1;
      const hasBacklog = samplesOf(text, 'port_agent_consumer_backlog').length > 0;
      const hasCircuit = samplesOf(text, 'port_agent_webhook_circuit_state').length > 0;
      return ended === failing.length + 1 && ready && hasBacklog && hasCircuit ? text : undefined;
    }, { timeoutMs: 30_000, description: 'every run ended, the agent ready, its backlog and circuits in the scrape' });
  }, { timeout: FIRST_RENDER_TIMEOUT_MS });

  after(async () => {
    await agent?.stop();
    await downService?.close();
    await closeRealParts({ target, port, broker });
  });

  it('ships neither the dashboard nor the rules unless asked', async () => {
    const plain = await render();
    assert.ok(!plain.has('PrometheusRule'));
    assert.ok(!plain.manifests.some((manifest) => manifest.kind === 'ConfigMap' && manifest.name.endsWith('-dashboard')));
  });

  it('puts the dashboard, as the chart holds it, in a ConfigMap the Grafana sidecar picks up', () => {
    const configMap = rendered.manifests.find((manifest) => manifest.kind === 'ConfigMap' && manifest.name === `${RELEASE}-dashboard`);
    assert.ok(configMap, 'a dashboard ConfigMap');
    assert.equal(field(configMap.body, 'metadata', 'labels', 'grafana_dashboard'), '1', 'the sidecar\'s default label');
    assert.equal(field(configMap.body, 'metadata', 'namespace'), NAMESPACE);
    const text = String(field(configMap.body, 'data', 'port-agent.json'));
    assert.equal(text, readFileSync(`${CHART}/dashboards/port-agent.json`, 'utf8').trimEnd(), 'verbatim: Grafana\'s {{label}} legends untouched');
    const dashboard: unknown = JSON.parse(text);
    assert.equal(field(dashboard, 'uid'), 'port-agent');
    const titles = list(field(dashboard, 'panels')).map((panel) => String(field(panel, 'title')));
    for (const title of ['Messages by outcome', 'Run end-to-end time', 'Delivery latency by host (p95)', 'Retries by host', 'Circuit state by host', 'Port calls by route and status', 'API budget remaining', 'Time waiting for the budget', 'Report queue', 'Backlog on the brokers by partition', 'Readiness by replica']) {
      assert.ok(titles.includes(title), `a panel "${title}"`);
    }
  });

  it('reads the metric names out of a query, and nothing else', () => {
    assert.deepEqual(metricNamesIn('histogram_quantile(0.95, sum by (host, le) (rate(port_agent_x_bucket{job=~"$job", a="b{c}"}[$__rate_interval])))'), ['port_agent_x_bucket']);
    assert.deepEqual(metricNamesIn('count(a_total >= 1) or vector(0)'), ['a_total']);
    assert.deepEqual(metricNamesIn('x / on (instance) group_left(version) build_info'), ['x', 'build_info']);
    assert.deepEqual(metricNamesIn('increase(d[5m]) or (d unless d offset $__rate_interval)'), ['d', 'd', 'd']);
  });

  it('queries, in every panel and variable, only metrics the running agent exports, in valid PromQL', () => {
    const dashboard: unknown = JSON.parse(readFileSync(`${CHART}/dashboards/port-agent.json`, 'utf8'));
    const { panels, variables } = dashboardQueries(dashboard);
    const exported = exposedNames(scrape);
    for (const query of [...panels, ...variables]) {
      // label_values(selector, label) is Grafana's, not PromQL: its first argument is the selector.
      const selector = /^label_values\((.*),\s*[a-zA-Z_]+\)$/.exec(query.expr)?.[1] ?? query.expr;
      const names = metricNamesIn(selector);
      assert.ok(names.length > 0, `${query.where}: "${query.expr}" names no metric`);
      for (const name of names) assert.ok(exported.has(name), `${query.where}: ${name} is not exported by the agent`);
    }
    // promtool parses each panel query as the expression of a recording rule.
    const rules = { groups: [{ name: 'dashboard', rules: panels.map((query, index) => ({ record: `dashboard:query_${index}`, expr: withGrafanaVariables(query.expr) })) }] };
    const file = join(folder, 'dashboard-queries.yaml');
    writeFileSync(file, stringify(rules));
    const checked = promtool(['check', 'rules', file]);
    assert.equal(checked.status, 0, checked.output);
  });

  it('refuses monitoring values it cannot use, naming them, and takes a ratio from --set as helm passes it', async () => {
    const ratio = 'metrics.prometheusRule.alerts.runsFailing.failedRatio';
    assert.match(await renderFails(['--set', `${ratio}=2`]), /failedRatio/);
    assert.match(await renderFails(['--set', `${ratio}=ten`]), /failedRatio/);
    assert.match(await renderFails(['--set', 'metrics.prometheusRule.alerts.notReady.for=5 minutes']), /notReady\.for/);
    assert.match(await renderFails(['--set', 'metrics.prometheusRule.alerts.runsFailing.minFailed=0']), /minFailed/);
    assert.match(await renderFails(['--set', 'metrics.grafanaDashboard.enabled=sometimes']), /grafanaDashboard\.enabled/);
    assert.match(await renderFails(['--set', 'metrics.prometheusRule.alerts.unknown.enabled=true']), /unknown/);
    const rules = await render(['--set', 'metrics.prometheusRule.enabled=true', '--set', `${ratio}=0.25`]);
    assert.match(String(field(rules.one('PrometheusRule'), 'spec', 'groups', 0, 'rules', 0, 'expr')), /\) > 0\.25\n/);
  });

  it('renders rules that promtool check rules accepts', () => {
    const file = join(folder, 'rules.yaml');
    writeFileSync(file, stringify({ groups: field(rendered.one('PrometheusRule'), 'spec', 'groups') }));
    const checked = promtool(['check', 'rules', file]);
    assert.equal(checked.status, 0, checked.output);
    assert.match(checked.output, /SUCCESS: 4 rules found/);
  });

  it('fires each alert on series from the real scrape, and none while all is well (promtool test rules)', () => {
    const rulesFile = join(folder, 'rules.yaml');
    writeFileSync(rulesFile, stringify({ groups: field(rendered.one('PrometheusRule'), 'spec', 'groups') }));
    const alerts: RuleAlert[] = list(field(rendered.one('PrometheusRule'), 'spec', 'groups', 0, 'rules')).map((rule) => ({
      alert: String(field(rule, 'alert')),
      labels: record(field(rule, 'labels')) as Record<string, string>,
      annotations: record(field(rule, 'annotations')) as Record<string, string>,
    }));
    const alertNamed = (name: string): RuleAlert => {
      const found = alerts.find((alert) => alert.alert === name);
      assert.ok(found, `an alert ${name}`);
      return found;
    };

    // What Prometheus adds to every sample it scrapes through the chart's ServiceMonitor.
    const service = String(field(rendered.one('Service'), 'metadata', 'name'));
    const target = { namespace: NAMESPACE, job: service, service, endpoint: 'http', instance: '10.42.0.17:8080', pod: `${RELEASE}-7d9f8b6c5d-x2x7q`, container: 'port-agent' };
    const scraped = (sample: ExposedSample | undefined, what: string): string => {
      assert.ok(sample, `the scrape has ${what}`);
      return seriesText(sample.name, { ...sample.labels, ...target });
    };
    const runs = { topic: setup.runsTopic };
    const failedRuns = scraped(samplesOf(scrape, 'port_agent_messages_total', { ...runs, outcome: 'failed' })[0], 'failed runs');
    const deliveredRuns = scraped(samplesOf(scrape, 'port_agent_messages_total', { ...runs, outcome: 'delivered' })[0], 'delivered runs');
    const awaitingReports = scraped(samplesOf(scrape, 'port_agent_runs_awaiting_reports')[0], 'runs awaiting reports');
    const acceptedReports = scraped(samplesOf(scrape, 'port_agent_port_api_calls_total', { status_class: '2xx' }).find((sample) => sample.labels.route?.includes('/runs/:runId')), 'reports Port accepted');
    const acceptedOtherCalls = scraped(samplesOf(scrape, 'port_agent_port_api_calls_total', { route: 'PATCH /v1/organization', status_class: '2xx' })[0], 'other Port calls answered 2xx');
    const ready = scraped(samplesOf(scrape, 'port_agent_ready')[0], 'readiness');
    // The same agent's readiness in another release of the chart: its own rule alerts on it.
    const otherRelease = ready.replace(`job="${service}"`, 'job="other-release-port-agent"');
    assert.notEqual(otherRelease, ready);
    const downHost = new URL(downService.url).host;
    const circuit = scraped(samplesOf(scrape, 'port_agent_webhook_circuit_state', { host: downHost })[0], `the circuit of ${downHost}`);

    const byTarget = { namespace: target.namespace, job: target.job, instance: target.instance };
    const expected = (name: string, extra: Record<string, string> = {}) => {
      const rule = alertNamed(name);
      const labels: Record<string, string> = { ...rule.labels, ...byTarget, ...extra };
      assert.equal(labels.team, 'platform', 'the alert labels of the values');
      return { exp_labels: labels, exp_annotations: expandedAnnotations(rule, labels) };
    };
    const test = (input: Array<[string, string]>, checks: Array<[string, ReturnType<typeof expected>[]]>) => ({
      interval: '1m',
      input_series: input.map(([series, values]) => ({ series, values })),
      alert_rule_test: checks.map(([alertname, exp_alerts]) => ({ eval_time: '25m', alertname, exp_alerts })),
    });
    const tests = [
      // Trouble: 6 of 10 runs a minute fail; reports wait while Port accepts no report (other calls
      // still pass); not ready; a circuit open, probing now and then. Another release is not ready too.
      test(
        [
          [failedRuns, '0+6x30'],
          [deliveredRuns, '0+4x30'],
          [awaitingReports, '3x30'],
          [acceptedReports, '40+0x30'],
          [acceptedOtherCalls, '1+1x30'],
          [ready, '0x30'],
          [otherRelease, '0x30'],
          [circuit, '2 2 2 2 1 2 2 2 2 1 2 2 2 2 1 2 2 2 2 1 2 2 2 2 1 2 2 2 2 1'],
        ],
        [
          ['PortAgentRunsFailing', [expected('PortAgentRunsFailing')]],
          ['PortAgentReportsWaitingOnPort', [expected('PortAgentReportsWaitingOnPort')]],
          ['PortAgentNotReady', [expected('PortAgentNotReady')]],
          ['PortAgentCircuitOpen', [expected('PortAgentCircuitOpen', { host: downHost })]],
        ],
      ),
      // All well: 1 in 100 runs fails; reports wait but Port accepts them; ready; a circuit open 3
      // minutes, then gone. Then a quiet agent: 2 failures out of 2 runs in 10 minutes page no one.
      test(
        [
          [failedRuns, '0+1x30'],
          [deliveredRuns, '0+99x30'],
          [awaitingReports, '3x30'],
          [acceptedReports, '40+20x30'],
          [ready, '1x30'],
          [circuit, '2x3'],
        ],
        alerts.map((alert) => [alert.alert, []]),
      ),
      // A quiet agent: one run every 6 minutes, each failing — every run fails, never 3 in 10 minutes.
      test(
        [
          [failedRuns, '0x5 1x5 2x5 3x5 4x5'],
          [deliveredRuns, '0x30'],
        ],
        [['PortAgentRunsFailing', []]],
      ),
    ];
    const tested = new Set(tests[0]?.alert_rule_test.map((check) => check.alertname));
    assert.deepEqual([...tested].sort(), alerts.map((alert) => alert.alert).sort(), 'every alert of the chart is tested');

    const testFile = join(folder, 'rules.test.yaml');
    writeFileSync(testFile, stringify({ rule_files: [rulesFile], evaluation_interval: '1m', tests }));
    const result = promtool(['test', 'rules', testFile]);
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /SUCCESS/);
  });
});
