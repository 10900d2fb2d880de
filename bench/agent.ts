/**
 * End-to-end agent benchmark: the built agent (`dist/src/main.js`) as its own process against the
 * local Kafka-protocol broker, the Port API stand-in and a webhook target that answers after a set
 * latency. Run: `npm run bench` (builds first). Prints each figure next to its goal with pass/fail.
 *
 * - Throughput: synchronous runs all on partition 0, from the first produce to the last status
 *   report, with the agent's default concurrency and again with `AGENT_MAX_IN_FLIGHT=1` (the
 *   baseline, on fewer runs: one at a time it would take minutes).
 * - Agent CPU time per run over the throughput window, from /proc (user + system).
 * - Added latency, produce to the target receiving the request, at a steady rate on partition 0.
 * - Port API calls per run against SPEC §7, token requests of the two loopback agents.
 * - Peak RSS of the agent (VmHWM).
 * - Throughput and added latency again with Port 80 ms away (a stand-in that answers late): what
 *   Port's distance costs once reporting is off the delivery path.
 * - A burst of 300 runs at Port's rate (500 calls per 10 s), with `AGENT_RUN_LOGS=all` and then
 *   `minimal`: every run reported, 429s, and the time against spending the budget without a gap.
 * - Many hosts: synchronous runs each to a host never used before (127.x.y.z of one service that
 *   never closes an idle connection, as a mapping building a URL per tenant does), RSS after
 *   2,000 and after 14,000 hosts (after 2,000 warm-up runs to one host): memory bounded by the
 *   hosts in use, not every host ever seen. A control runs the same to one host.
 *   `BENCH_AGENT_SCENARIO=many-hosts` runs only this one.
 *
 * The agent logs at INFO, what operators run, so logging counts in its CPU time. Linux only
 * (/proc). `BENCH_AGENT_PROFILE=<dir>` also writes the main agent's V8 CPU profile there and prints
 * where the throughput window's CPU time went (profiling slows the agent: figures are then not
 * the reference ones). An `AGENT_MAX_IN_FLIGHT` in the environment is passed to the main agent.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { AgentExit } from '../test/support/agent-process.js';
import { startBroker } from '../test/support/broker.js';
import type { Broker } from '../test/support/broker.js';
import { disconnectKafkaClients, produce } from '../test/support/kafka.js';
import type { TestMessage } from '../test/support/kafka.js';
import { actionRunMessage, signed } from '../test/support/messages.js';
import { startPortStandIn } from '../test/support/port-stand-in.js';
import type { PortStandIn, RateLimit, RecordedCall } from '../test/support/port-stand-in.js';
import { waitFor } from '../test/support/wait.js';
import { startWebhookTarget } from '../test/support/webhook-target.js';
import type { WebhookTarget } from '../test/support/webhook-target.js';
import { agentSetup, startConsumingAgent } from '../test/support/harness.js';
import type { AgentSetup } from '../test/support/harness.js';
import { readProfileOf, summarizeProfile } from './cpu-profile.js';
import type { MonotonicWindowUs, ProfileSummary } from './cpu-profile.js';
import { cpuTimeMs, peakRssBytes, residentBytes } from './proc-stats.js';
import { loopbackAddress } from '../test/support/loopback-hosts.js';

const COMMAND = 'npm run bench';
const TARGET_LATENCY_MS = 100;
const PARTITION = 0;
const THROUGHPUT_RUNS = 2_000;
// One at a time a run takes the target's 100 ms plus its Port calls: 100 runs measure the rate in
// about 12 s, where 2,000 would take minutes.
const BASELINE_RUNS = 100;
// Runs handled before any measurement, so the agent's code is compiled and its connections open.
const WARMUP_RUNS = 50;
const LATENCY_RUNS_PER_SECOND = 20;
const LATENCY_RUNS = 400;
const LATENCY_INTERVAL_MS = 1000 / LATENCY_RUNS_PER_SECOND;
// docs/development.md: the mock broker does not wake a waiting fetch, so the fetch wait bounds the latency.
const FETCH_MAX_WAIT_MS = 10;
// Runs produced per call: kafkajs makes each call one record batch, and the mock broker answers a
// fetch with one record batch where a real broker gives up to 1 MB per partition. 500 signed runs
// (~650 KB) give the agent about what one fetch of a real backlog would.
const PRODUCE_BATCH_SIZE = 500;
// Generous bounds for runs to be reported, sized for an agent handling one run at a time.
const COMPLETION_START_SLACK_MS = 60_000;
const COMPLETION_BUDGET_PER_RUN_MS = 250;
const POLL_INTERVAL_MS = 20;
// A run's final status comes by a status patch, or on its last run-log line as `terminationStatus`.
const STATUS_ROUTE = 'PATCH /v1/actions/runs/:runId';
const LOG_ROUTE = 'POST /v1/actions/runs/:runId/logs';
// SPEC §7 for a synchronous run answered 200 with a JSON body, AGENT_RUN_LOGS=all: 7 run logs
// (received, preparing, sending, completed, reporting the response, response reported, finished)
// and the response patch; SUCCESS rides on the finished line instead of a status patch of its own.
const EXPECTED_CALLS_PER_RUN = 8;
// Port across a network (another region, a proxy): every answer arrives this much later.
const FAR_PORT_DELAY_MS = 80;
// Port's rate, 50 calls/s (15,000 per 5 minutes), in 10 s windows so that a burst spans several
// windows within the benchmark's time.
const PORT_RATE_LIMIT: RateLimit = { limit: 500, periodSeconds: 10 };
const BURST_RUNS = 300;
// The burst agents' warm-up spends Port's budget as well: a few runs get the agent on its feet
// (token, consumer group, connections) without taking much of the window the burst starts in.
const BURST_WARMUP_RUNS = 5;
const BURST_RUN_LOGS_MODES = ['all', 'minimal'] as const;
// Many hosts: RSS after the first step and after the last, runs produced a step at a time (the
// mock broker keeps only the last ~10,000 messages of a partition).
const MANY_HOSTS_STEP = 2_000;
const MANY_HOSTS_TOTAL = 14_000;
const MANY_HOSTS_SCENARIO = 'many-hosts';
const ONE_HOST_ADDRESS = '127.0.0.1';
const BYTES_PER_MB = 1_000_000;
const PROFILE_TOP_ENTRIES = 12;
const STDERR_TAIL_CHARS = 2_000;
const PROFILER_PRELOAD = new URL('./cpu-profiler.mjs', import.meta.url);

const GOALS = {
  runsPerSecond: 500,
  speedUpOverOneInFlight: 40,
  cpuMsPerRun: 1.0,
  latencyP50Ms: 15,
  latencyP99Ms: 50,
  maxTokenRequests: 2,
  peakRssMb: 150,
  farPortLatencyP50Ms: 20,
  farPortLatencyP99Ms: 60,
  /** Runs/s with Port far away, as a share of the loopback runs/s of the same benchmark run. */
  farPortShareOfLoopbackRunsPerSecond: 0.6,
  burstMaxRateLimitedPercent: 1,
  /** Burst time over the ideal: every call made, one after the other at Port's rate. */
  burstMaxTimeOverIdeal: 1.15,
  /** RSS after `MANY_HOSTS_TOTAL` distinct hosts over RSS after the first `MANY_HOSTS_STEP`. */
  manyHostsMaxRssRatio: 1.2,
} as const;

/** The parts of the benchmark every scenario uses; `port` is the stand-in the scenario's agent calls. */
interface Bench {
  broker: Broker;
  port: PortStandIn;
  target: WebhookTarget;
}

/** One Port stand-in per kind of Port, so that each scenario's calls and tokens are counted apart. */
interface Ports {
  /** On loopback, answering at once, no rate limit: the reference figures. */
  loopback: PortStandIn;
  /** Answering `FAR_PORT_DELAY_MS` late, no rate limit. */
  far: PortStandIn;
  /** Answering at once, within `PORT_RATE_LIMIT`. */
  limited: PortStandIn;
  /** As `loopback`, for the many-hosts agents, whose tokens must not count in the main figures. */
  manyHosts: PortStandIn;
}

/** An agent process under measurement. */
interface MeasuredAgent {
  setup: AgentSetup;
  pid: number;
  /** Throws once the agent has exited: waiting for its reports would only end in a timeout. */
  assertRunning(): void;
}

interface BenchRun {
  runId: string;
  message: TestMessage;
}

/** CPU time (ms) used so far by the agent, this process (stand-in, target, producer) and the broker. */
interface CpuSnapshot {
  atMs: number;
  agentMs: number;
  harnessMs: number;
  /** Undefined with an external broker. */
  brokerMs: number | undefined;
}

/** Share of one core each process used over a window, in percent. */
interface CoreLoad {
  agent: number;
  harness: number;
  broker: number | undefined;
}

interface ThroughputResult {
  runIds: string[];
  /** Runs whose final status Port accepted: all of them, unless the wait was allowed to miss some. */
  reported: number;
  runsPerSecond: number;
  cpuMsPerRun: number;
  windowMs: number;
  /** Whether the harness or the broker, on the same cores, could have held the agent back. */
  load: CoreLoad;
  monotonicWindow: MonotonicWindowUs;
}

interface LatencyResult {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Row {
  figure: string;
  measured: string;
  goal: string;
  /** Undefined for a figure given as context, without a goal. */
  isPass: boolean | undefined;
}

/** Signed synchronous runs aimed at the target, all for the measured partition. */
function benchRuns(bench: Bench, prefix: string, count: number): BenchRun[] {
  const url = `${bench.target.url}/deploy`;
  return Array.from({ length: count }, (_, index) => {
    const runId = `r_${prefix}_${index}`;
    return { runId, message: { value: signed(actionRunMessage({ runId, url, synchronized: true }), bench.port.clientSecret), partition: PARTITION } };
  });
}

async function produceInBatches(brokers: string[], topic: string, runs: BenchRun[]): Promise<void> {
  for (let start = 0; start < runs.length; start += PRODUCE_BATCH_SIZE) {
    await produce(brokers, topic, runs.slice(start, start + PRODUCE_BATCH_SIZE).map((run) => run.message));
  }
}

/**
 * The final status a call gave its run, if any: a status patch's `status`, or the `terminationStatus`
 * of a run-log line. Only a call Port accepted counts: a 429 reported nothing.
 */
function finalStatusOf(call: RecordedCall): string | undefined {
  if (call.status === undefined || call.status >= 400) return undefined;
  const body = call.body as { status?: unknown; terminationStatus?: unknown } | undefined;
  const status = call.route === STATUS_ROUTE ? body?.status : call.route === LOG_ROUTE ? body?.terminationStatus : undefined;
  return typeof status === 'string' ? status : undefined;
}

/**
 * When each of `runIds` got its final status at the stand-in. Reads only the calls recorded since the
 * last poll: scanning all of them (tens of thousands) every few ms would load the machine being measured.
 */
function createStatusReports(port: PortStandIn, runIds: string[]): { reportedAt: Map<string, number>; poll(): void } {
  const measured = new Set(runIds);
  const reportedAt = new Map<string, number>();
  let scanned = 0;
  return {
    reportedAt,
    poll() {
      for (; scanned < port.calls.length; scanned += 1) {
        const call = port.calls[scanned];
        const runId = call?.params.runId;
        if (call === undefined || runId === undefined || !measured.has(runId) || reportedAt.has(runId)) continue;
        if (finalStatusOf(call) !== undefined) reportedAt.set(runId, call.at);
      }
    },
  };
}

/**
 * Waits for the final status of every run. With `mayMiss`, runs still without one at the deadline
 * are an outcome to print (the burst's "every run reported"), not the end of the benchmark.
 */
async function waitForStatusReports(
  bench: Bench,
  agent: MeasuredAgent,
  runIds: string[],
  description: string,
  mayMiss = false,
): Promise<Map<string, number>> {
  const reports = createStatusReports(bench.port, runIds);
  try {
    await waitFor(
      () => {
        agent.assertRunning();
        reports.poll();
        return reports.reportedAt.size === runIds.length;
      },
      {
        timeoutMs: COMPLETION_START_SLACK_MS + runIds.length * COMPLETION_BUDGET_PER_RUN_MS,
        intervalMs: POLL_INTERVAL_MS,
        description: `the final statuses of ${description}`,
      },
    );
  } catch (error) {
    // An agent that exited is never an outcome: its runs would only be missing.
    agent.assertRunning();
    if (!mayMiss) throw error;
  }
  return reports.reportedAt;
}

function cpuSnapshot(bench: Bench, agentPid: number): CpuSnapshot {
  const harness = process.cpuUsage();
  return {
    atMs: performance.now(),
    agentMs: cpuTimeMs(agentPid),
    harnessMs: (harness.user + harness.system) / 1000,
    brokerMs: bench.broker.pid === undefined ? undefined : cpuTimeMs(bench.broker.pid),
  };
}

function coreLoad(before: CpuSnapshot, after: CpuSnapshot): CoreLoad {
  const percent = (usedMs: number): number => (usedMs * 100) / (after.atMs - before.atMs);
  return {
    agent: percent(after.agentMs - before.agentMs),
    harness: percent(after.harnessMs - before.harnessMs),
    broker: before.brokerMs === undefined || after.brokerMs === undefined ? undefined : percent(after.brokerMs - before.brokerMs),
  };
}

function monotonicNowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Produces all runs to one partition, then times from the first produce to the last final status
 * (with runs missing, `mayMiss`, to when the wait gave up).
 */
async function measureThroughput(bench: Bench, agent: MeasuredAgent, runs: number, mayMiss = false): Promise<ThroughputResult> {
  const measured = benchRuns(bench, `${agent.setup.orgId}_throughput`, runs);
  const runIds = measured.map((run) => run.runId);
  const before = cpuSnapshot(bench, agent.pid);
  const monotonicStartUs = monotonicNowUs();
  const firstProducedAt = Date.now();
  await produceInBatches(bench.broker.brokers, agent.setup.runsTopic, measured);
  const reportedAt = await waitForStatusReports(bench, agent, runIds, `${runs} runs`, mayMiss);
  const after = cpuSnapshot(bench, agent.pid);
  const lastReportedAt = reportedAt.size === runs ? Math.max(...reportedAt.values()) : Date.now();
  const windowMs = lastReportedAt - firstProducedAt;
  return {
    runIds,
    reported: reportedAt.size,
    runsPerSecond: (reportedAt.size * 1000) / windowMs,
    cpuMsPerRun: (after.agentMs - before.agentMs) / runs,
    windowMs,
    load: coreLoad(before, after),
    monotonicWindow: { startUs: monotonicStartUs, endUs: monotonicStartUs + windowMs * 1000 },
  };
}

/** The nearest-rank percentile of ascending `sorted` values. */
function percentile(sorted: number[], fraction: number): number {
  const value = sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)];
  if (value === undefined) throw new Error('No values to take a percentile of');
  return value;
}

function receivedAtByRunId(target: WebhookTarget): Map<string, number> {
  const receivedAt = new Map<string, number>();
  for (const request of target.requests) {
    const context = (request.json as { context?: { runId?: unknown } } | undefined)?.context;
    if (typeof context?.runId === 'string' && !receivedAt.has(context.runId)) receivedAt.set(context.runId, request.at);
  }
  return receivedAt;
}

/**
 * Produces one run every interval, each on its own as Port produces them, and measures produce →
 * target receipt. On the mock broker each of these runs is a record batch of its own, so every
 * fetch brings the agent one run (a real broker gives all that arrived since the last fetch).
 */
async function measureLatency(bench: Bench, agent: MeasuredAgent): Promise<LatencyResult> {
  const measured = benchRuns(bench, `${agent.setup.orgId}_latency`, LATENCY_RUNS);
  const runIds = measured.map((run) => run.runId);
  const producedAt = new Map<string, number>();
  const sends: Promise<void>[] = [];
  const startedAt = performance.now();
  for (const [index, run] of measured.entries()) {
    // Scheduled from the start, not from the previous send, so the rate stays steady.
    await delay(Math.max(0, startedAt + index * LATENCY_INTERVAL_MS - performance.now()));
    producedAt.set(run.runId, Date.now());
    sends.push(produce(bench.broker.brokers, agent.setup.runsTopic, [run.message]));
  }
  await Promise.all(sends);
  await waitForStatusReports(bench, agent, runIds, `${LATENCY_RUNS} runs at ${LATENCY_RUNS_PER_SECOND} runs/s`);
  const receivedAt = receivedAtByRunId(bench.target);
  const latencies = runIds
    .map((runId) => {
      const received = receivedAt.get(runId);
      const produced = producedAt.get(runId);
      if (received === undefined || produced === undefined) throw new Error(`Run ${runId} never reached the target`);
      return received - produced;
    })
    .sort((a, b) => a - b);
  return { p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), maxMs: latencies.at(-1) ?? 0 };
}

/** Port API calls addressed to each run, counted in one pass over everything the stand-in recorded. */
function callsPerRun(port: PortStandIn, runIds: string[]): { average: number; min: number; max: number } {
  const counts = new Map(runIds.map((runId) => [runId, 0]));
  for (const call of port.calls) {
    const runId = call.params.runId;
    const count = runId === undefined ? undefined : counts.get(runId);
    if (runId !== undefined && count !== undefined) counts.set(runId, count + 1);
  }
  const values = [...counts.values()];
  return {
    average: values.reduce((sum, value) => sum + value, 0) / values.length,
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** Runs whose final status was SUCCESS: a benchmark of failing runs would measure the wrong path. */
function successfulRuns(port: PortStandIn, runIds: string[]): number {
  const measured = new Set(runIds);
  const succeeded = new Set<string>();
  for (const call of port.calls) {
    const runId = call.params.runId;
    if (runId !== undefined && measured.has(runId) && finalStatusOf(call) === 'SUCCESS') succeeded.add(runId);
  }
  return succeeded.size;
}

function agentEnv(extra: Record<string, string>): Record<string, string> {
  return {
    LOG_LEVEL: 'INFO',
    KAFKA_CONSUMER_FETCH_MAX_WAIT_MS: String(FETCH_MAX_WAIT_MS),
    // The default, as operators run it (the integration harness shortens it for failure tests).
    WEBHOOK_INVOKER_TIMEOUT: '30',
    ...extra,
  };
}

/**
 * Starts an agent on a fresh org (fresh topics and group), lets it handle `warmUpCount` warm-up
 * runs, gives it to `measure`, and stops it whatever happens.
 */
async function withWarmAgent<T>(
  bench: Bench,
  extra: Record<string, string>,
  measure: (agent: MeasuredAgent) => Promise<T>,
  warmUpCount: number = WARMUP_RUNS,
): Promise<{ result: T; exit: AgentExit; pid: number }> {
  const setup = agentSetup(bench.broker, bench.port, agentEnv(extra));
  // Produced before the agent starts, the warm-up runs also create the topic it is assigned.
  const warmUpRuns = benchRuns(bench, `${setup.orgId}_warmup`, warmUpCount);
  await produceInBatches(bench.broker.brokers, setup.runsTopic, warmUpRuns);
  const agentProcess = await startConsumingAgent(setup);
  let exit: AgentExit | undefined;
  void agentProcess.exited.then((exited) => {
    exit = exited;
  });
  try {
    const pid = agentProcess.pid;
    if (pid === undefined) throw new Error('The agent process has no pid');
    const agent: MeasuredAgent = {
      setup,
      pid,
      assertRunning: () => {
        if (exit !== undefined) throw new Error(`The agent exited during the benchmark (${JSON.stringify(exit)}): ${agentProcess.stderr().slice(-STDERR_TAIL_CHARS)}`);
      },
    };
    await waitForStatusReports(bench, agent, warmUpRuns.map((run) => run.runId), `${warmUpCount} warm-up runs`);
    const result = await measure(agent);
    return { result, exit: await agentProcess.stop(), pid };
  } finally {
    // After a clean stop above this only returns the exit; after an error it stops the agent.
    await agentProcess.stop();
  }
}

interface OneInFlightResult {
  throughput: ThroughputResult;
  peakRssBytes: number;
}

interface AgentFigures {
  throughput: ThroughputResult;
  latency: LatencyResult;
  peakRssBytes: number;
}

interface MainAgentResult extends AgentFigures {
  profile: ProfileSummary | undefined;
}

/** What a burst at Port's rate limit cost, for one `AGENT_RUN_LOGS` mode. */
interface BurstResult {
  mode: (typeof BURST_RUN_LOGS_MODES)[number];
  reported: number;
  /** Every Port call from the first produce to the last final status, control calls and 429s included. */
  calls: number;
  rateLimited: number;
  totalMs: number;
}

/** The main agents' settings: the defaults, or the `AGENT_MAX_IN_FLIGHT` of the environment. */
function mainAgentEnv(): Record<string, string> {
  const maxInFlight = process.env.AGENT_MAX_IN_FLIGHT;
  return maxInFlight === undefined ? {} : { AGENT_MAX_IN_FLIGHT: maxInFlight };
}

/** Throughput and CPU, then latency, of one agent on a warm start. */
function benchFigures(bench: Bench, extra: Record<string, string>): Promise<{ result: AgentFigures; exit: AgentExit; pid: number }> {
  return withWarmAgent(bench, extra, async (agent) => {
    const throughput = await measureThroughput(bench, agent, THROUGHPUT_RUNS);
    const latency = await measureLatency(bench, agent);
    return { throughput, latency, peakRssBytes: peakRssBytes(agent.pid) };
  });
}

/** The agent as operators run it (default concurrency), Port on loopback. */
async function benchMainAgent(bench: Bench, profileDirectory: string | undefined): Promise<MainAgentResult> {
  const extra = mainAgentEnv();
  if (profileDirectory !== undefined) {
    extra.NODE_OPTIONS = `--import ${PROFILER_PRELOAD.href}`;
    extra.BENCH_AGENT_PROFILE_DIR = profileDirectory;
  }
  const { result, exit, pid } = await benchFigures(bench, extra);
  if (profileDirectory === undefined) return { ...result, profile: undefined };
  // The preload writes the profile as the process exits normally.
  if (exit.code !== 0) throw new Error(`The profiled agent did not exit cleanly: ${JSON.stringify(exit)}`);
  return { ...result, profile: summarizeProfile(readProfileOf(profileDirectory, pid), result.throughput.monotonicWindow) };
}

async function benchOneInFlight(bench: Bench): Promise<OneInFlightResult> {
  const { result } = await withWarmAgent(bench, { AGENT_MAX_IN_FLIGHT: '1' }, async (agent) => ({
    throughput: await measureThroughput(bench, agent, BASELINE_RUNS),
    peakRssBytes: peakRssBytes(agent.pid),
  }));
  return result;
}

/** The main agent's figures with Port far away (`bench.port` answering late). */
async function benchFarPort(bench: Bench): Promise<AgentFigures> {
  return (await benchFigures(bench, mainAgentEnv())).result;
}

/**
 * `BURST_RUNS` runs at once against Port's rate limit (`bench.port` enforcing it), on a fresh
 * agent in `mode`. Runs still unreported when the wait gives up are counted, not fatal.
 */
async function benchBurst(bench: Bench, mode: BurstResult['mode']): Promise<BurstResult> {
  const { result } = await withWarmAgent(
    bench,
    { AGENT_RUN_LOGS: mode },
    async (agent) => {
      const [callsBefore, rateLimitedBefore] = [bench.port.calls.length, bench.port.rateLimitedCalls()];
      const throughput = await measureThroughput(bench, agent, BURST_RUNS, true);
      return {
        mode,
        reported: throughput.reported,
        calls: bench.port.calls.length - callsBefore,
        rateLimited: bench.port.rateLimitedCalls() - rateLimitedBefore,
        totalMs: throughput.windowMs,
      };
    },
    BURST_WARMUP_RUNS,
  );
  return result;
}

/**
 * RSS of the agent after each step of `MANY_HOSTS_STEP` runs: each to a new host, and (a control
 * on a fresh agent) the same runs all to one host, which shows how much of the growth is V8
 * sizing its heap to the load rather than anything kept per host.
 */
interface ManyHostsResult {
  rssBytesBySteps: number[];
  oneHostRssBytesBySteps: number[];
}

/** A service on every address that answers at once and never closes an idle connection (as Go's net/http by default). */
async function startManyHostsService(): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{"deployed":true}'));
  });
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** One step of `MANY_HOSTS_STEP` synchronous runs, the i-th to `addressOf(first + i)`, all reported. */
async function runManyHostsStep(bench: Bench, agent: MeasuredAgent, service: { port: number }, first: number, addressOf: (index: number) => string): Promise<void> {
  const runs: BenchRun[] = Array.from({ length: MANY_HOSTS_STEP }, (_, offset) => {
    const runId = `r_${agent.setup.orgId}_host_${first + offset}`;
    const url = `http://${addressOf(first + offset)}:${service.port}/deploy`;
    return { runId, message: { value: signed(actionRunMessage({ runId, url, synchronized: true }), bench.port.clientSecret), partition: PARTITION } };
  });
  await produceInBatches(bench.broker.brokers, agent.setup.runsTopic, runs);
  await waitForStatusReports(bench, agent, runs.map((run) => run.runId), `runs ${first + 1}-${first + MANY_HOSTS_STEP}`);
}

/**
 * RSS after each step of runs on a fresh agent, the i-th to `addressOf(i)`, after a warm-up step
 * of the same runs to one host: V8 grows its heap to a load over the first thousands of runs
 * whatever their hosts (the control grew 8-22 % from its first step to its last without it), and
 * the figure is about what each host adds.
 */
async function rssByStepsOfRunsTo(bench: Bench, service: { port: number }, addressOf: (index: number) => string): Promise<number[]> {
  const { result } = await withWarmAgent(bench, mainAgentEnv(), async (agent) => {
    await runManyHostsStep(bench, agent, service, -MANY_HOSTS_STEP, () => ONE_HOST_ADDRESS);
    const rssBytesBySteps: number[] = [];
    for (let first = 0; first < MANY_HOSTS_TOTAL; first += MANY_HOSTS_STEP) {
      await runManyHostsStep(bench, agent, service, first, addressOf);
      rssBytesBySteps.push(residentBytes(agent.pid));
    }
    return rssBytesBySteps;
  });
  return result;
}

/** Runs each to a host never used before, then the same runs to one host on a fresh agent. */
async function benchManyHosts(bench: Bench): Promise<ManyHostsResult> {
  const service = await startManyHostsService();
  try {
    const rssBytesBySteps = await rssByStepsOfRunsTo(bench, service, loopbackAddress);
    const oneHostRssBytesBySteps = await rssByStepsOfRunsTo(bench, service, () => ONE_HOST_ADDRESS);
    return { rssBytesBySteps, oneHostRssBytesBySteps };
  } finally {
    service.server.closeAllConnections();
    await new Promise<void>((resolve) => service.server.close(() => resolve()));
  }
}

const formatNumber = (value: number, digits: number): string =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function mainRows(main: MainAgentResult, oneInFlight: OneInFlightResult, bench: Bench): Row[] {
  const { throughput, latency } = main;
  const speedUp = throughput.runsPerSecond / oneInFlight.throughput.runsPerSecond;
  const calls = callsPerRun(bench.port, throughput.runIds);
  const tokens = bench.port.tokenRequests();
  const succeeded = successfulRuns(bench.port, throughput.runIds);
  const peakMb = main.peakRssBytes / BYTES_PER_MB;
  const oneInFlightPeakMb = oneInFlight.peakRssBytes / BYTES_PER_MB;
  return [
    {
      figure: `runs/s, ${formatNumber(THROUGHPUT_RUNS, 0)} sync runs on 1 partition, target ${TARGET_LATENCY_MS} ms`,
      measured: `${formatNumber(throughput.runsPerSecond, 1)} (${formatNumber(throughput.windowMs / 1000, 2)} s)`,
      goal: `≥ ${GOALS.runsPerSecond}`,
      isPass: throughput.runsPerSecond >= GOALS.runsPerSecond,
    },
    {
      figure: `runs/s with AGENT_MAX_IN_FLIGHT=1 (${BASELINE_RUNS} runs)`,
      measured: formatNumber(oneInFlight.throughput.runsPerSecond, 1),
      goal: '—',
      isPass: undefined,
    },
    {
      figure: 'speed-up over AGENT_MAX_IN_FLIGHT=1',
      measured: `${formatNumber(speedUp, 1)}×`,
      goal: `≥ ${GOALS.speedUpOverOneInFlight}×`,
      isPass: speedUp >= GOALS.speedUpOverOneInFlight,
    },
    {
      figure: 'agent CPU time per run (user + system), LOG_LEVEL=INFO',
      measured: `${formatNumber(throughput.cpuMsPerRun, 2)} ms`,
      goal: `≤ ${formatNumber(GOALS.cpuMsPerRun, 1)} ms`,
      isPass: throughput.cpuMsPerRun <= GOALS.cpuMsPerRun,
    },
    {
      figure: `added latency p50, ${LATENCY_RUNS_PER_SECOND} runs/s, fetch wait ${FETCH_MAX_WAIT_MS} ms`,
      measured: `${formatNumber(latency.p50Ms, 0)} ms`,
      goal: `≤ ${GOALS.latencyP50Ms} ms`,
      isPass: latency.p50Ms <= GOALS.latencyP50Ms,
    },
    {
      figure: `added latency p99 (max ${formatNumber(latency.maxMs, 0)} ms)`,
      measured: `${formatNumber(latency.p99Ms, 0)} ms`,
      goal: `≤ ${GOALS.latencyP99Ms} ms`,
      isPass: latency.p99Ms <= GOALS.latencyP99Ms,
    },
    {
      figure: 'Port API calls per run (7 logs + response, SUCCESS on the last log; official: 9)',
      measured: `${formatNumber(calls.average, 2)} (min ${calls.min}, max ${calls.max})`,
      goal: `= ${EXPECTED_CALLS_PER_RUN}`,
      isPass: calls.min === EXPECTED_CALLS_PER_RUN && calls.max === EXPECTED_CALLS_PER_RUN,
    },
    {
      figure: 'token requests, loopback Port (main and baseline agents)',
      measured: String(tokens),
      goal: `≤ ${GOALS.maxTokenRequests}`,
      isPass: tokens <= GOALS.maxTokenRequests,
    },
    {
      figure: 'peak RSS of the agent (VmHWM)',
      measured: `${formatNumber(peakMb, 1)} MB (in flight 1: ${formatNumber(oneInFlightPeakMb, 1)} MB)`,
      goal: `≤ ${GOALS.peakRssMb} MB`,
      isPass: Math.max(peakMb, oneInFlightPeakMb) <= GOALS.peakRssMb,
    },
    {
      figure: 'throughput runs reported SUCCESS',
      measured: `${formatNumber(succeeded, 0)} / ${formatNumber(THROUGHPUT_RUNS, 0)}`,
      goal: 'all',
      isPass: succeeded === THROUGHPUT_RUNS,
    },
  ];
}

/** The main figures again with Port far away; runs/s against the loopback runs/s of this run. */
function farPortRows(far: AgentFigures, main: MainAgentResult): Row[] {
  const prefix = `Port ${FAR_PORT_DELAY_MS} ms away:`;
  const share = far.throughput.runsPerSecond / main.throughput.runsPerSecond;
  const minRunsPerSecond = GOALS.farPortShareOfLoopbackRunsPerSecond * main.throughput.runsPerSecond;
  return [
    {
      figure: `${prefix} runs/s, ${formatNumber(THROUGHPUT_RUNS, 0)} sync runs`,
      measured: `${formatNumber(far.throughput.runsPerSecond, 1)} (${formatNumber(far.throughput.windowMs / 1000, 2)} s; ${formatNumber(share, 2)}× loopback)`,
      goal: `≥ ${GOALS.farPortShareOfLoopbackRunsPerSecond}× loopback (${formatNumber(minRunsPerSecond, 1)})`,
      isPass: share >= GOALS.farPortShareOfLoopbackRunsPerSecond,
    },
    {
      figure: `${prefix} added latency p50, ${LATENCY_RUNS_PER_SECOND} runs/s`,
      measured: `${formatNumber(far.latency.p50Ms, 0)} ms`,
      goal: `≤ ${GOALS.farPortLatencyP50Ms} ms`,
      isPass: far.latency.p50Ms <= GOALS.farPortLatencyP50Ms,
    },
    {
      figure: `${prefix} added latency p99 (max ${formatNumber(far.latency.maxMs, 0)} ms)`,
      measured: `${formatNumber(far.latency.p99Ms, 0)} ms`,
      goal: `≤ ${GOALS.farPortLatencyP99Ms} ms`,
      isPass: far.latency.p99Ms <= GOALS.farPortLatencyP99Ms,
    },
  ];
}

/**
 * A burst's figures. The ideal time is every call made, one after the other at Port's average
 * rate. Windows are aligned to the epoch, so the burst starts part-way into one: the agent beats
 * the ideal by what that window still had beyond 50 calls/s of its remaining time.
 */
function burstRows(burst: BurstResult): Row[] {
  const prefix = `burst of ${BURST_RUNS}, AGENT_RUN_LOGS=${burst.mode}:`;
  const callsPerSecond = PORT_RATE_LIMIT.limit / PORT_RATE_LIMIT.periodSeconds;
  const idealMs = (burst.calls * 1000) / callsPerSecond;
  const rateLimitedPercent = (burst.rateLimited * 100) / burst.calls;
  const isComplete = burst.reported === BURST_RUNS;
  return [
    {
      figure: `${prefix} runs with a final status`,
      measured: `${burst.reported} / ${BURST_RUNS}`,
      goal: 'all',
      isPass: isComplete,
    },
    {
      figure: `${prefix} Port calls made`,
      measured: `${formatNumber(burst.calls, 0)} (${formatNumber(burst.calls / BURST_RUNS, 2)} per run)`,
      goal: '—',
      isPass: undefined,
    },
    {
      figure: `${prefix} calls answered 429`,
      measured: `${formatNumber(rateLimitedPercent, 2)} % (${burst.rateLimited})`,
      goal: `≤ ${GOALS.burstMaxRateLimitedPercent} %`,
      isPass: rateLimitedPercent <= GOALS.burstMaxRateLimitedPercent,
    },
    {
      figure: `${prefix} first produce → last final status`,
      measured:
        `${formatNumber(burst.totalMs / 1000, 1)} s${isComplete ? '' : ' (gave up)'}; ideal ${formatNumber(idealMs / 1000, 1)} s ` +
        `(calls ÷ ${callsPerSecond}/s), ${formatNumber(burst.totalMs / idealMs, 2)}×`,
      goal: `≤ ${GOALS.burstMaxTimeOverIdeal}× ideal`,
      isPass: isComplete && burst.totalMs <= GOALS.burstMaxTimeOverIdeal * idealMs,
    },
  ];
}

const megabytes = (bytes: number): string => `${formatNumber(bytes / BYTES_PER_MB, 1)} MB`;

function manyHostsRows(manyHosts: ManyHostsResult): Row[] {
  const first = manyHosts.rssBytesBySteps[0] ?? Number.NaN;
  const last = manyHosts.rssBytesBySteps.at(-1) ?? Number.NaN;
  const ratio = last / first;
  const steps = (bytesBySteps: number[]): string => bytesBySteps.map((bytes) => formatNumber(bytes / BYTES_PER_MB, 0)).join(', ');
  const oneHostFirst = manyHosts.oneHostRssBytesBySteps[0] ?? Number.NaN;
  const oneHostLast = manyHosts.oneHostRssBytesBySteps.at(-1) ?? Number.NaN;
  return [
    {
      figure: `agent RSS after ${formatNumber(MANY_HOSTS_STEP, 0)} distinct hosts (sync runs, idle connections kept by the service; after ${formatNumber(MANY_HOSTS_STEP, 0)} warm-up runs to one host)`,
      measured: megabytes(first),
      goal: '—',
      isPass: undefined,
    },
    {
      figure: `agent RSS after ${formatNumber(MANY_HOSTS_TOTAL, 0)} distinct hosts (every ${formatNumber(MANY_HOSTS_STEP, 0)}: ${steps(manyHosts.rssBytesBySteps)} MB)`,
      measured: `${megabytes(last)} (${formatNumber(ratio, 2)}×)`,
      goal: `≤ ${GOALS.manyHostsMaxRssRatio}× the RSS after ${formatNumber(MANY_HOSTS_STEP, 0)}`,
      isPass: ratio <= GOALS.manyHostsMaxRssRatio,
    },
    {
      figure: `control: the same runs all to one host, RSS after ${formatNumber(MANY_HOSTS_STEP, 0)} and ${formatNumber(MANY_HOSTS_TOTAL, 0)} (every ${formatNumber(MANY_HOSTS_STEP, 0)}: ${steps(manyHosts.oneHostRssBytesBySteps)} MB)`,
      measured: `${megabytes(oneHostFirst)} → ${megabytes(oneHostLast)} (${formatNumber(oneHostLast / oneHostFirst, 2)}×)`,
      goal: '—',
      isPass: undefined,
    },
  ];
}

function printTable(rows: Row[]): void {
  const cells = rows.map((row) => [row.figure, row.measured, row.goal, row.isPass === undefined ? '' : row.isPass ? 'PASS' : 'FAIL']);
  const header = ['figure', 'measured', 'goal', 'result'];
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((cell) => (cell[column] ?? '').length)));
  const line = (cell: string[]): string => `| ${cell.map((text, column) => text.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const cell of cells) console.log(line(cell));
}

/** Load average over the last minute: other work on the machine skews every figure. */
function machineLoad(): string {
  return `${formatNumber(loadavg()[0] ?? 0, 2)} on ${cpus().length} cores`;
}

function printLoad(load: CoreLoad): void {
  const percent = (value: number): string => `${formatNumber(value, 0)} %`;
  const broker = load.broker === undefined ? '' : `, broker ${percent(load.broker)}`;
  console.log(
    `\nCPU during the ${formatNumber(THROUGHPUT_RUNS, 0)}-run window, in % of one core: ` +
      `agent ${percent(load.agent)}, harness (Port stand-in, target, producer) ${percent(load.harness)}${broker}; ` +
      `machine load average now ${machineLoad()}`,
  );
}

function printProfile(profile: ProfileSummary): void {
  const idleMs = profile.byArea.find((entry) => entry.name === '(idle)')?.selfMs ?? 0;
  const busyMs = profile.totalMs - idleMs;
  const print = (title: string, entries: ProfileSummary['byArea']): void => {
    console.log(`\n${title}`);
    for (const entry of entries.filter((candidate) => candidate.name !== '(idle)').slice(0, PROFILE_TOP_ENTRIES)) {
      console.log(`  ${formatNumber(entry.selfMs, 0).padStart(7)} ms  ${formatNumber((entry.selfMs * 100) / busyMs, 1).padStart(5)} %  ${entry.name}`);
    }
  };
  console.log(`\nmain agent CPU profile of the throughput window: ${formatNumber(busyMs, 0)} ms busy, ${formatNumber(idleMs, 0)} ms idle`);
  print('self time by package or file:', profile.byArea);
  print('self time by function:', profile.byFunction);
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const isDirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return isDirty ? `${commit} with local changes` : commit;
  } catch {
    return 'unknown';
  }
}

function printHeader(): void {
  const cores = cpus();
  console.log(`agent benchmark: \`${COMMAND}\` (the built agent, dist/src/main.js, as its own process)`);
  console.log(
    `commit ${gitCommit()}, Node ${process.version}, ${cores.length} CPUs (${cores[0]?.model.trim() ?? 'unknown model'}), load average ${machineLoad()}`,
  );
  console.log(
    `target answers 200 with a JSON body after ${TARGET_LATENCY_MS} ms; runs synchronous, all on partition ${PARTITION}; ` +
      `produced ${PRODUCE_BATCH_SIZE} per call (latency: one per call); ${WARMUP_RUNS} warm-up runs per agent first; LOG_LEVEL=INFO; KAFKA_CONSUMER_FETCH_MAX_WAIT_MS=${FETCH_MAX_WAIT_MS}; ` +
      `AGENT_MAX_IN_FLIGHT=${process.env.AGENT_MAX_IN_FLIGHT ?? 'default'} (main agent)`,
  );
  console.log(
    `then the main agent's figures with Port answering ${FAR_PORT_DELAY_MS} ms late; then ${BURST_RUNS} runs at once against Port's rate limit ` +
      `(${PORT_RATE_LIMIT.limit} calls per ${PORT_RATE_LIMIT.periodSeconds} s, windows aligned to the epoch), AGENT_RUN_LOGS=${BURST_RUN_LOGS_MODES.join(', then ')}; ` +
      `then ${formatNumber(MANY_HOSTS_TOTAL, 0)} sync runs each to a new host (BENCH_AGENT_SCENARIO=${MANY_HOSTS_SCENARIO}: only those)`,
  );
}

async function startPorts(): Promise<Ports> {
  const [loopback, far, limited, manyHosts] = await Promise.all([
    startPortStandIn(),
    startPortStandIn({ answerDelayMs: FAR_PORT_DELAY_MS }),
    startPortStandIn({ rateLimit: PORT_RATE_LIMIT }),
    startPortStandIn(),
  ]);
  return { loopback, far, limited, manyHosts };
}

/** The broker and the target, with the loopback Port; every stand-in shares the client secret the target checks. */
async function startBench(ports: Ports): Promise<Bench> {
  const broker = await startBroker();
  const target = await startWebhookTarget({
    secret: ports.loopback.clientSecret,
    respond: () => ({ status: 200, body: { deployed: true }, delayMs: TARGET_LATENCY_MS }),
  });
  return { broker, port: ports.loopback, target };
}

async function stopBench(bench: Bench, ports: Ports): Promise<void> {
  await disconnectKafkaClients();
  await Promise.allSettled([bench.target.close(), ...Object.values(ports).map((port) => port.close())]);
  await bench.broker.stop();
}

// The agents and the broker are child processes: an interrupted benchmark must not leave them
// running (test/support kills its children on exit, which a signal alone does not trigger).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const profileDirectory = process.env.BENCH_AGENT_PROFILE === undefined ? undefined : resolve(process.env.BENCH_AGENT_PROFILE);
if (profileDirectory !== undefined) mkdirSync(profileDirectory, { recursive: true });
printHeader();
const ports = await startPorts();
const bench = await startBench(ports);
const manyHostsMessage = `agent sending ${formatNumber(MANY_HOSTS_TOTAL, 0)} sync runs, each to a new host, ${formatNumber(MANY_HOSTS_STEP, 0)} at a time; then a fresh agent the same runs to one host…`;
try {
  if (process.env.BENCH_AGENT_SCENARIO === MANY_HOSTS_SCENARIO) {
    console.log(`\n${manyHostsMessage}`);
    const manyHosts = await benchManyHosts({ ...bench, port: ports.manyHosts });
    console.log('');
    printTable(manyHostsRows(manyHosts));
  } else {
    console.log(`\nmain agent: ${WARMUP_RUNS} warm-up runs, ${formatNumber(THROUGHPUT_RUNS, 0)} runs for throughput, ${LATENCY_RUNS} runs at ${LATENCY_RUNS_PER_SECOND} runs/s for latency…`);
    const main = await benchMainAgent(bench, profileDirectory);
    console.log(`baseline agent (AGENT_MAX_IN_FLIGHT=1): ${WARMUP_RUNS} warm-up runs, ${BASELINE_RUNS} runs…`);
    const oneInFlight = await benchOneInFlight(bench);
    console.log(`agent with Port ${FAR_PORT_DELAY_MS} ms away: as the main agent…`);
    const far = await benchFarPort({ ...bench, port: ports.far });
    const bursts: BurstResult[] = [];
    for (const mode of BURST_RUN_LOGS_MODES) {
      console.log(`agent with AGENT_RUN_LOGS=${mode} at Port's rate limit: ${BURST_WARMUP_RUNS} warm-up runs, ${BURST_RUNS} runs at once…`);
      bursts.push(await benchBurst({ ...bench, port: ports.limited }, mode));
    }
    console.log(manyHostsMessage);
    const manyHosts = await benchManyHosts({ ...bench, port: ports.manyHosts });
    console.log('');
    printTable([...mainRows(main, oneInFlight, bench), ...farPortRows(far, main), ...bursts.flatMap(burstRows), ...manyHostsRows(manyHosts)]);
    printLoad(main.throughput.load);
    if (main.profile !== undefined) printProfile(main.profile);
  }
} catch (error) {
  console.error(`\nThe benchmark could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopBench(bench, ports);
}
