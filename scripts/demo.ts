/**
 * `npm run demo`: the agent end to end on this machine, nothing to configure. Starts the local
 * Kafka-protocol broker (librdkafka's mock cluster through kcat), a Port API stand-in and a sample
 * internal service, puts one sample message of every kind on the topics, runs the built agent until
 * every run has reached its final state, stops it with SIGTERM and prints a summary. Exits 0 only
 * when every run ended as expected and the agent stopped cleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import pinoPretty from 'pino-pretty';
import { startBroker } from '../test/support/broker.js';
import { samplesOf } from '../test/support/exposition.js';
import { disconnectKafkaClients, produce } from '../test/support/kafka.js';
import { actionRunMessage, changelogMessage, nodeRunMessage, signed } from '../test/support/messages.js';
import { startPortStandIn } from '../test/support/port-stand-in.js';
import type { PortStandIn } from '../test/support/port-stand-in.js';
import { waitFor } from '../test/support/wait.js';
import { refusedUrl } from '../test/support/webhook-target.js';
import type { ReceivedRequest, WebhookTarget } from '../test/support/webhook-target.js';
import { SERVICE_ANSWERS, startDemoService } from './demo-service.js';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLI_PATH = join(REPO_ROOT, 'dist', 'src', 'main.js');
const ORG_ID = 'org_demo';
const RUNS_TOPIC = `${ORG_ID}.runs`;
const CHANGE_LOG_TOPIC = `${ORG_ID}.change.log`;
// The first group join takes about 3 s on the mock broker, each run well under a second.
const FINAL_STATE_TIMEOUT_MS = 60_000;
const FINAL_STATE_POLL_MS = 50;
// The agent's own shutdown grace period is shorter; past this it is killed and the demo fails.
const AGENT_STOP_TIMEOUT_MS = 15_000;
const INTERRUPTED_AGENT_STOP_TIMEOUT_MS = 5_000;
const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_INTERRUPTED = 130;
const INSTALL_KCAT_HINT = 'kcat is needed for the local Kafka broker: install it with `sudo apt-get install -y kcat`, then run `npm run demo` again';
const FINISHED_ACTION_RUN = 'Port agent finished processing the action run';
const FINISHED_NODE_RUN = 'Port agent finished processing the workflow node run';
// The agent logs level labels; numbers are pino's defaults, kept for any other formatter.
const WARN_LEVELS: readonly unknown[] = ['warn', 40];
const ERROR_LEVELS: readonly unknown[] = ['error', 'fatal', 50, 60];
const MIN_DETAIL_CHARS = 40;
const PREFIX_CHARS = 'service │ '.length;

// ─── output ────────────────────────────────────────────────────────────────────────────────────

const isColored = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
const paint = (code: string) => (text: string): string => (isColored ? `\u001b[${code}m${text}\u001b[0m` : text);
const bold = paint('1');
const dim = paint('2');
const red = paint('31');
const green = paint('32');
const yellow = paint('33');
const cyan = paint('36');
const magenta = paint('35');

type Speaker = 'demo' | 'agent' | 'service';
const SPEAKER_COLORS: Record<Speaker, (text: string) => string> = { demo: cyan, agent: dim, service: magenta };

/** One line from the demo, the agent or the service, prefixed so the three are told apart. */
function print(speaker: Speaker, text: string): void {
  const prefix = SPEAKER_COLORS[speaker](`${speaker.padEnd(7)} │`);
  for (const line of text.split('\n')) process.stdout.write(`${prefix} ${line}\n`);
}

function say(text: string): void {
  print('demo', text);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, Math.max(0, maxChars - 1))}…`;
}

// ─── cleanup: every child process and server goes away, whatever happens ──────────────────────

const cleanups: (() => Promise<unknown> | void)[] = [];
let cleaning: Promise<void> | undefined;

/** Runs the registered cleanups once, newest first (the agent before the broker it commits to). */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) {
      try {
        await cleanup();
      } catch (error) {
        say(yellow(`cleanup step failed: ${describeError(error)}`));
      }
    }
  })();
  return cleaning;
}

let isInterrupted = false;

function onSignal(signal: NodeJS.Signals): void {
  if (isInterrupted) {
    // The 'exit' handlers SIGKILL the agent and kcat.
    say(red(`${signal} again: killing everything now`));
    process.exit(EXIT_INTERRUPTED);
  }
  isInterrupted = true;
  say(yellow(`${signal}: stopping the agent, the service, the Port stand-in and the broker…`));
  void cleanUp().finally(() => process.exit(EXIT_INTERRUPTED));
}

// ─── kcat ──────────────────────────────────────────────────────────────────────────────────────

function canRun(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return result.error === undefined;
}

/** kcat hosts the local broker: install it when we may (root with apt-get), else say how. */
function ensureKcat(): boolean {
  if (process.env.TEST_KAFKA_BROKERS?.trim()) return true; // an external broker: no kcat needed
  if (canRun('kcat', ['-V'])) return true;
  if (process.getuid?.() === 0 && canRun('apt-get', ['--version'])) {
    say('▶ kcat (it hosts the local Kafka broker) is missing: installing it with apt-get…');
    const install = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq kcat'], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (install.status === 0 && canRun('kcat', ['-V'])) return true;
  }
  process.stderr.write(`demo    │ ${INSTALL_KCAT_HINT}\n`);
  return false;
}

// ─── the agent as a child process ──────────────────────────────────────────────────────────────

type AgentLogLine = Record<string, unknown>;

interface AgentExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed with SIGKILL because it did not stop in time. */
  isForced: boolean;
}

interface DemoAgent {
  /** Every JSON log line so far, parsed. */
  logs: AgentLogLine[];
  /** Its exit, once it has exited. */
  exit(): AgentExit | undefined;
  /** SIGTERM, then SIGKILL after `timeoutMs`; idempotent. */
  stop(timeoutMs: number): Promise<AgentExit>;
}

function agentEnvironment(port: PortStandIn, brokers: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    ...env,
    PORT_ORG_ID: ORG_ID,
    PORT_CLIENT_ID: port.clientId,
    PORT_CLIENT_SECRET: port.clientSecret,
    PORT_API_BASE_URL: port.url,
    USING_LOCAL_PORT_INSTANCE: 'true',
    KAFKA_CONSUMER_BOOTSTRAP_SERVERS: brokers.join(','),
    // docs/development.md: the mock broker needs a session timeout of 6–10 s and a short fetch wait.
    KAFKA_CONSUMER_SESSION_TIMEOUT_MS: '6000',
    KAFKA_CONSUMER_FETCH_MAX_WAIT_MS: '50',
    LOG_LEVEL: 'INFO',
    // A free port, whatever else runs on this machine; the demo reads it from the agent's log.
    HEALTH_PORT: '0',
    // Two retries show the retry path (run log lines, Idempotency-Key) and keep the demo short.
    WEBHOOK_MAX_RETRIES: '2',
  };
}

function parseLogLine(line: string): AgentLogLine | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the built agent in an empty temporary directory (no `.env`, no mapping file: the built-in
 * default mapping) and prints its pino lines through pino-pretty. It gets a process group of its
 * own so a Ctrl-C reaches only the demo, which then stops it in order.
 */
function startAgent(env: Record<string, string>): DemoAgent {
  const cwd = mkdtempSync(join(tmpdir(), 'port-agent-demo-'));
  const child = spawn(process.execPath, [CLI_PATH], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let exit: AgentExit | undefined;
  let isForced = false;
  const killNow = (): void => {
    if (exit === undefined) child.kill('SIGKILL');
  };
  process.once('exit', killNow);

  const logs: AgentLogLine[] = [];
  const pretty = pinoPretty.prettyFactory({
    colorize: isColored,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
  });
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    const parsed = parseLogLine(line);
    if (parsed === undefined) {
      print('agent', line);
      return;
    }
    logs.push(parsed);
    print('agent', pretty(line).trimEnd());
  });
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => print('agent', red(line)));

  const exited = new Promise<AgentExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal, isForced };
      process.removeListener('exit', killNow);
      rmSync(cwd, { recursive: true, force: true });
      resolve(exit);
    });
    child.once('error', (error) => {
      print('agent', red(`could not start the agent: ${error.message}`));
      if (child.pid === undefined) {
        exit = { code: null, signal: null, isForced };
        resolve(exit);
      }
    });
  });

  let stopping: Promise<AgentExit> | undefined;
  return {
    logs,
    exit: () => exit,
    stop: (timeoutMs) => {
      stopping ??= (async () => {
        if (exit !== undefined) return exit;
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), timeoutMs);
        });
        const result = await Promise.race([exited, deadline]);
        clearTimeout(timer);
        if (result !== undefined) return result;
        say(red(`the agent did not stop within ${timeoutMs / 1000} s of SIGTERM: killing it`));
        isForced = true;
        killNow();
        return exited;
      })();
      return stopping;
    },
  };
}

function describeExit(exit: AgentExit): string {
  if (exit.isForced) return 'killed with SIGKILL (it did not stop after SIGTERM)';
  if (exit.signal !== null) return `ended by ${exit.signal}`;
  return `exit code ${String(exit.code)}`;
}

// ─── the sample runs ───────────────────────────────────────────────────────────────────────────

/** What one sample run left behind, at the service, at Port and in the agent's logs. */
interface Observation {
  /** Requests the service received for this run. */
  requests: ReceivedRequest[];
  /** Run logs Port accepted. */
  logs: string[];
  /** Status patches Port accepted (run or node run). */
  patches: unknown[];
  /** Synchronous responses Port accepted. */
  responses: unknown[];
  /** Every Port API call addressed to the run id, accepted or not. */
  portCalls: number;
  /** The agent's log lines naming the run id. */
  agentLines: AgentLogLine[];
}

interface Sample {
  /** The run id in the message (for a change-log event: the run that made the change). */
  runId: string;
  kind: string;
  /** The expected outcome, in a few words. */
  expected: string;
  topic: string;
  /** The message bytes, as Port puts them on the topic. */
  value: string;
  /** Where the run is addressed, for the narration. */
  target: string;
  /** The request the service must get, or undefined when it must get none. */
  delivery: { method: string; path: string } | undefined;
  /** Whether Port must hear about the run. */
  isReported: boolean;
  /** The run has reached the state it ends in (as expected or not): nothing more will happen. */
  isFinal(observation: Observation): boolean;
  /** What is wrong with how the run ended, beyond delivery and reporting; empty when all is well. */
  check(observation: Observation): string[];
}

function lastPatch(observation: Observation): Record<string, unknown> | undefined {
  const patch = observation.patches.at(-1);
  return isRecord(patch) ? patch : undefined;
}

function expectStatus(observation: Observation, status: string): string[] {
  const actual = lastPatch(observation)?.status;
  return actual === status ? [] : [`expected the run status ${status}, Port got ${actual === undefined ? 'none' : JSON.stringify(actual)}`];
}

function expectLastLog(observation: Observation, text: string): string[] {
  const last = observation.logs.at(-1);
  return last === text ? [] : [`expected the last run log "${text}", Port got ${last === undefined ? 'none' : `"${last}"`}`];
}

function expectLog(observation: Observation, text: string): string[] {
  return observation.logs.includes(text) ? [] : [`expected the run log "${text}"`];
}

function expectResponse(observation: Observation, response: object): string[] {
  return observation.responses.some((reported) => isDeepStrictEqual(reported, response))
    ? []
    : [`expected the service's response ${JSON.stringify(response)} reported to Port`];
}

const hasPatch = (observation: Observation): boolean => observation.patches.length > 0;

function buildSamples(serviceUrl: string, unreachableUrl: string, secret: string): Sample[] {
  const onRuns = (message: Record<string, unknown>): string => signed(message, secret);
  const answer = (path: string): object => SERVICE_ANSWERS[path]?.body ?? {};
  return [
    {
      runId: 'r_provision',
      kind: 'action, async',
      expected: 'delivered, no status',
      topic: RUNS_TOPIC,
      value: onRuns(actionRunMessage({ runId: 'r_provision', url: `${serviceUrl}/provision` })),
      target: 'POST /provision (answers 202)',
      delivery: { method: 'POST', path: '/provision' },
      isReported: true,
      isFinal: (o) => o.logs.includes(FINISHED_ACTION_RUN) || hasPatch(o),
      check: (o) => [
        ...expectLog(o, 'Action invocation has completed successfully with status code: 202'),
        ...expectLastLog(o, FINISHED_ACTION_RUN),
        ...(hasPatch(o) ? ['an asynchronous run that succeeded must get no status from the agent'] : []),
      ],
    },
    {
      runId: 'r_deploy',
      kind: 'action, sync',
      expected: 'SUCCESS + response',
      topic: RUNS_TOPIC,
      value: onRuns(actionRunMessage({ runId: 'r_deploy', url: `${serviceUrl}/deploy`, synchronized: true })),
      target: 'POST /deploy (answers 200 JSON after 50 ms)',
      delivery: { method: 'POST', path: '/deploy' },
      isReported: true,
      isFinal: hasPatch,
      check: (o) => [...expectStatus(o, 'SUCCESS'), ...expectResponse(o, answer('/deploy')), ...expectLastLog(o, FINISHED_ACTION_RUN)],
    },
    {
      runId: 'r_flaky',
      kind: 'action, sync',
      expected: 'FAILURE (500)',
      topic: RUNS_TOPIC,
      value: onRuns(actionRunMessage({ runId: 'r_flaky', url: `${serviceUrl}/flaky`, synchronized: true })),
      target: 'POST /flaky (answers 500)',
      delivery: { method: 'POST', path: '/flaky' },
      isReported: true,
      isFinal: hasPatch,
      check: (o) => {
        const summary = lastPatch(o)?.summary;
        return [
          ...expectStatus(o, 'FAILURE'),
          ...(typeof summary === 'string' && summary.startsWith('Failed to invoke the webhook with status code: 500')
            ? []
            : [`expected the summary "Failed to invoke the webhook with status code: 500…", Port got ${JSON.stringify(summary)}`]),
          ...expectResponse(o, answer('/flaky')),
        ];
      },
    },
    {
      runId: 'r_unreachable',
      kind: 'action, async',
      expected: 'FAILURE (refused)',
      topic: RUNS_TOPIC,
      value: onRuns(actionRunMessage({ runId: 'r_unreachable', url: `${unreachableUrl}/deploy` })),
      target: `POST ${unreachableUrl}/deploy (nothing listens there)`,
      delivery: undefined,
      isReported: true,
      isFinal: hasPatch,
      check: (o) => {
        const summary = lastPatch(o)?.summary;
        return [
          ...expectStatus(o, 'FAILURE'),
          ...(typeof summary === 'string' && summary.length > 0 ? [] : ['expected a summary saying why the run failed']),
        ];
      },
    },
    {
      runId: 'r_put_deploy',
      kind: 'action, sync, PUT',
      expected: 'SUCCESS + response',
      topic: RUNS_TOPIC,
      value: onRuns(actionRunMessage({ runId: 'r_put_deploy', url: `${serviceUrl}/deploy`, method: 'PUT', synchronized: true })),
      target: 'PUT /deploy (answers 200 JSON)',
      delivery: { method: 'PUT', path: '/deploy' },
      isReported: true,
      isFinal: hasPatch,
      check: (o) => [...expectStatus(o, 'SUCCESS'), ...expectResponse(o, answer('/deploy')), ...expectLastLog(o, FINISHED_ACTION_RUN)],
    },
    {
      runId: 'r_not_for_agent',
      kind: 'action, agent: false',
      expected: 'skipped',
      topic: RUNS_TOPIC,
      value: onRuns(actionRunMessage({ runId: 'r_not_for_agent', url: `${serviceUrl}/deploy`, agent: false })),
      target: 'POST /deploy, but invocationMethod.agent is false',
      delivery: undefined,
      isReported: false,
      isFinal: (o) => o.agentLines.some((line) => /skip/i.test(String(line.msg))) || o.requests.length > 0 || o.portCalls > 0,
      check: (o) => (o.agentLines.some((line) => /skip/i.test(String(line.msg))) ? [] : ['expected the agent to log that it skipped the message']),
    },
    {
      runId: 'wfnr_notify',
      kind: 'workflow node run',
      expected: 'COMPLETED/SUCCESS',
      topic: RUNS_TOPIC,
      value: onRuns(nodeRunMessage({ runId: 'wfnr_notify', url: `${serviceUrl}/node`, synchronized: true })),
      target: 'POST /node (answers 201 JSON)',
      delivery: { method: 'POST', path: '/node' },
      isReported: true,
      isFinal: hasPatch,
      check: (o) => {
        const expected = { status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: 201, data: answer('/node') } } };
        return [
          ...(isDeepStrictEqual(lastPatch(o), expected) ? [] : [`expected the node run patch ${JSON.stringify(expected)}, Port got ${JSON.stringify(lastPatch(o))}`]),
          ...expectLog(o, FINISHED_NODE_RUN),
        ];
      },
    },
    {
      runId: 'r_changed_checkout',
      kind: 'change-log event',
      expected: 'delivered only',
      topic: CHANGE_LOG_TOPIC,
      // Not signed (SPEC §4); its context.runId names the run that made the change, never reported to.
      value: JSON.stringify(changelogMessage({ url: `${serviceUrl}/changelog`, runId: 'r_changed_checkout' })),
      target: 'POST /changelog (answers 200)',
      delivery: { method: 'POST', path: '/changelog' },
      isReported: false,
      isFinal: (o) => o.requests.length > 0,
      check: () => [],
    },
  ];
}

function runIdOf(request: ReceivedRequest): string | undefined {
  const context = isRecord(request.json) ? request.json.context : undefined;
  const runId = isRecord(context) ? context.runId : undefined;
  return typeof runId === 'string' ? runId : undefined;
}

function observe(sample: Sample, service: WebhookTarget, port: PortStandIn, agentLogs: AgentLogLine[]): Observation {
  const isNodeRun = sample.runId.startsWith('wfnr_');
  return {
    requests: service.requests.filter((request) => runIdOf(request) === sample.runId),
    logs: isNodeRun ? port.nodeRunLogs(sample.runId) : port.actionRunLogs(sample.runId),
    patches: isNodeRun ? port.nodeRunPatches(sample.runId) : port.actionRunPatches(sample.runId),
    responses: isNodeRun ? [] : port.actionRunResponses(sample.runId),
    portCalls: port.apiCallsForRun(sample.runId).length,
    agentLines: agentLogs.filter((line) => line.runId === sample.runId),
  };
}

/** Every problem with how a sample ended: delivery, reporting, then its own checks. */
function problemsOf(sample: Sample, observation: Observation): string[] {
  const problems: string[] = [];
  const { requests } = observation;
  if (sample.delivery === undefined) {
    if (requests.length > 0) problems.push(`the service must get no request, it got ${requests.length}`);
  } else {
    const { method, path } = sample.delivery;
    if (requests.length === 0) problems.push(`expected ${method} ${path} at the service, it got nothing`);
    for (const request of requests) {
      if (request.method !== method || request.path !== path) problems.push(`expected ${method} ${path} at the service, it got ${request.method} ${request.path}`);
      if (!request.signatureValid) problems.push(`the service got ${request.method} ${request.path} with an invalid X-Port-Signature`);
    }
  }
  if (!sample.isReported && observation.portCalls > 0) problems.push(`Port must hear nothing about ${sample.runId}, it got ${observation.portCalls} call(s)`);
  if (sample.isReported && observation.portCalls === 0) problems.push('Port heard nothing about the run');
  // A run Port heard nothing about fails its own checks too: one line says it.
  if (!sample.isReported || observation.portCalls > 0) problems.push(...sample.check(observation));
  return problems;
}

/** What the agent's health server says now: its probes and a few counters from /metrics. */
async function healthSnapshot(agentLogs: AgentLogLine[]): Promise<string> {
  const port = agentLogs.find((line) => line.msg === 'health server listening')?.port;
  if (typeof port !== 'number') return red('the agent did not log its health server port');
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, text: await response.text() };
  };
  try {
    const [liveness, readiness, metrics] = [await get('/healthz'), await get('/readyz'), await get('/metrics')];
    const total = (name: string, label: string): string => {
      const counts = new Map<string, number>();
      for (const { labels, value } of samplesOf(metrics.text, name)) {
        const key = labels[label] ?? '?';
        counts.set(key, (counts.get(key) ?? 0) + value);
      }
      return [...counts].map(([key, count]) => `${key} ${count}`).join(', ');
    };
    return (
      `health on :${port}: /healthz ${liveness.status}, /readyz ${readiness.status} · ` +
      `port_agent_messages_total: ${total('port_agent_messages_total', 'outcome')} · ` +
      `webhook attempts: ${total('port_agent_webhook_requests_total', 'status_class')} · ` +
      `Port API calls: ${total('port_agent_port_api_calls_total', 'status_class')}`
    );
  } catch (error) {
    return red(`the health server did not answer: ${describeError(error)}`);
  }
}

// ─── the summary ───────────────────────────────────────────────────────────────────────────────

function describeService(observation: Observation): string {
  const [first] = observation.requests;
  if (first === undefined) return 'nothing';
  const count = observation.requests.length;
  const status = SERVICE_ANSWERS[first.path]?.status ?? 404;
  const signature = observation.requests.every((request) => request.signatureValid) ? '' : ' (BAD SIGNATURE)';
  return `${count > 1 ? `${count}× ` : ''}${first.method} ${first.path} ${status}${signature}`;
}

function describePort(sample: Sample, observation: Observation): string {
  if (observation.portCalls === 0) return 'nothing';
  const patch = lastPatch(observation);
  if (sample.runId.startsWith('wfnr_')) {
    if (patch === undefined) return 'logs, no result';
    const output = isRecord(patch.output) && isRecord(patch.output.response) ? ` (${String(patch.output.response.status)})` : '';
    return `${String(patch.status)}/${String(patch.result)}${output}`;
  }
  const status = patch === undefined ? 'logs, no status' : String(patch.status);
  return observation.responses.length > 0 ? `${status} + response` : status;
}

/** The words an operator would read: the run's summary or last run log, or why the agent skipped it. */
function describeDetail(observation: Observation): string | undefined {
  const summary = lastPatch(observation)?.summary;
  if (typeof summary === 'string') return `Port summary: "${summary}"`;
  const lastLog = observation.logs.at(-1);
  if (lastLog !== undefined) return `last run log: "${lastLog.trim()}"`;
  const skip = observation.agentLines.find((line) => /skip/i.test(String(line.msg)));
  if (skip !== undefined) return `agent: ${String(skip.msg)}${typeof skip.reason === 'string' ? ` (${skip.reason})` : ''}`;
  return undefined;
}

interface Row {
  cells: string[];
  detail: string | undefined;
  problems: string[];
}

function printTable(header: string[], rows: Row[]): void {
  const columns = process.stdout.isTTY === true ? process.stdout.columns : Number.POSITIVE_INFINITY;
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => (row.cells[index] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ');
  const indent = ' '.repeat((widths[0] ?? 0) + 2);
  const detailChars = Math.max(MIN_DETAIL_CHARS, columns - PREFIX_CHARS - indent.length - 2);
  say(bold(line(header)));
  for (const row of rows) {
    say(`${line(row.cells)}  ${row.problems.length === 0 ? green('✔') : red('✘')}`);
    if (row.detail !== undefined) say(dim(`${indent}↳ ${truncate(row.detail, detailChars)}`));
    for (const problem of row.problems) say(red(`${indent}✘ ${problem}`));
  }
}

// ─── the demo ──────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<number> {
  if (!existsSync(CLI_PATH)) {
    say(red(`${relative(process.cwd(), CLI_PATH) || CLI_PATH} not found: run \`npm run build\` first`));
    return EXIT_FAILED;
  }
  if (!ensureKcat()) return EXIT_FAILED;
  say(bold('Port execution agent — local demo'));

  say(
    process.env.TEST_KAFKA_BROKERS?.trim()
      ? '▶ using the Kafka broker(s) named in TEST_KAFKA_BROKERS…'
      : '▶ starting the local Kafka broker (librdkafka mock cluster, through kcat)…',
  );
  const broker = await startBroker();
  cleanups.push(() => broker.stop());
  say(`  Kafka broker at ${broker.brokers.join(',')}`);

  say('▶ starting the Port API stand-in…');
  const port = await startPortStandIn();
  cleanups.push(() => port.close());
  say(`  Port API stand-in at ${port.url}`);

  say('▶ starting the sample internal service…');
  const service = await startDemoService({
    secret: port.clientSecret,
    onRequest: (request, status) =>
      print('service', `← ${request.method} ${request.path} for ${runIdOf(request) ?? 'no run'}, signature ${request.signatureValid ? 'valid' : 'INVALID'} → answering ${status}`),
  });
  cleanups.push(() => service.close());
  say(`  sample service at ${service.url}: ${Object.entries(SERVICE_ANSWERS).map(([path, { status }]) => `${path} → ${status}`).join(', ')}`);

  const samples = buildSamples(service.url, await refusedUrl(), port.clientSecret);
  say(`▶ putting ${samples.length} sample messages on ${RUNS_TOPIC} (signed like Port signs them) and ${CHANGE_LOG_TOPIC}…`);
  samples.forEach((sample, index) => say(`  ${index + 1}. ${sample.runId.padEnd(24)} ${sample.kind.padEnd(25)} ${sample.target}`));
  cleanups.push(() => disconnectKafkaClients());
  for (const topic of [RUNS_TOPIC, CHANGE_LOG_TOPIC]) {
    const messages = samples.filter((sample) => sample.topic === topic).map((sample) => ({ key: sample.runId, value: sample.value }));
    await produce(broker.brokers, topic, messages);
  }
  await disconnectKafkaClients();

  say(`▶ starting the agent (node ${relative(REPO_ROOT, CLI_PATH)}); it reads the topics from the beginning…`);
  const agent = startAgent(agentEnvironment(port, broker.brokers));
  // Interrupted, the broker is usually gone too (a terminal's Ctrl-C reaches kcat): wait less.
  cleanups.push(() => agent.stop(isInterrupted ? INTERRUPTED_AGENT_STOP_TIMEOUT_MS : AGENT_STOP_TIMEOUT_MS));

  const startedAt = Date.now();
  const finished = new Set<Sample>();
  let hasWaitFailed = false;
  try {
    await waitFor(
      () => {
        const exit = agent.exit();
        if (exit !== undefined) throw new Error(`the agent exited early (${describeExit(exit)})`);
        for (const sample of samples) {
          if (finished.has(sample) || !sample.isFinal(observe(sample, service, port, agent.logs))) continue;
          finished.add(sample);
          say(`■ ${sample.runId} reached its final state (${finished.size}/${samples.length})`);
        }
        return finished.size === samples.length;
      },
      { timeoutMs: FINAL_STATE_TIMEOUT_MS, intervalMs: FINAL_STATE_POLL_MS, description: 'every sample run to reach its final state' },
    );
    say(`▶ every run reached its final state ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the agent started`);
  } catch (error) {
    hasWaitFailed = true;
    const pending = samples.filter((sample) => !finished.has(sample)).map((sample) => sample.runId);
    say(red(`✘ ${describeError(error)}${pending.length > 0 ? `; still pending: ${pending.join(', ')}` : ''}`));
  }
  if (isInterrupted) {
    await cleanUp();
    return EXIT_INTERRUPTED;
  }

  const health = agent.exit() === undefined ? await healthSnapshot(agent.logs) : undefined;
  if (agent.exit() === undefined) say('▶ stopping the agent with SIGTERM…');
  const exit = await agent.stop(AGENT_STOP_TIMEOUT_MS);
  say(`  the agent stopped: ${describeExit(exit)}`);

  // Judged once the agent has stopped: everything it was going to report has reached Port.
  const observations = samples.map((sample) => observe(sample, service, port, agent.logs));
  const rows: Row[] = samples.map((sample, index) => {
    const observation = observations[index] ?? observe(sample, service, port, agent.logs);
    return {
      cells: [String(index + 1), sample.runId, sample.kind, sample.expected, describeService(observation), describePort(sample, observation)],
      detail: describeDetail(observation),
      problems: problemsOf(sample, observation),
    };
  });
  const delivered = observations.filter((observation) => observation.requests.length > 0).length;
  const reported = observations.filter((observation) => observation.portCalls > 0).length;
  const tokenRequests = port.tokenRequests();
  const signedRequests = service.requests.filter((request) => request.signatureValid).length;
  const warnings = agent.logs.filter((line) => WARN_LEVELS.includes(line.level)).length;
  const errors = agent.logs.filter((line) => ERROR_LEVELS.includes(line.level)).length;

  say('▶ stopping the sample service, the Port stand-in and the broker…');
  await cleanUp();
  if (isInterrupted) return EXIT_INTERRUPTED;

  say('');
  say(bold('Summary'));
  printTable(['#', 'run', 'kind', 'expected', 'the service got', 'Port got'], rows);
  const expectedDelivered = samples.filter((sample) => sample.delivery !== undefined).length;
  const expectedReported = samples.filter((sample) => sample.isReported).length;
  const isAgentOk = exit.code === 0 && !exit.isForced;
  say('');
  say(
    `sent ${bold(String(samples.length))} · delivered ${bold(String(delivered))} (expected ${expectedDelivered}) · ` +
      `reported ${bold(String(reported))} (expected ${expectedReported}) · Port token requests ${bold(String(tokenRequests))} · ` +
      `signatures verified by the service ${signedRequests}/${service.requests.length}`,
  );
  if (health !== undefined) say(health);
  say(`agent: ${agent.logs.length} log lines (${warnings} warnings, ${errors} errors: failed runs are logged as errors), ${describeExit(exit)}${isAgentOk ? '' : red(' — expected exit code 0 after SIGTERM')}`);

  const isSuccess = !hasWaitFailed && isAgentOk && rows.every((row) => row.problems.length === 0);
  say(isSuccess ? green(bold('✔ every run ended as expected')) : red(bold('✘ the demo did not go as expected (see above)')));
  return isSuccess ? EXIT_OK : EXIT_FAILED;
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    say(red(`✘ the demo failed: ${describeError(error)}`));
    await cleanUp();
    process.exit(EXIT_FAILED);
  },
);
