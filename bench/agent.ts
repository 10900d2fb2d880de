/**
 * End-to-end agent benchmark: the built agent (`dist/src/cli.js`) as its own process against the
 * local Kafka-protocol broker, the Port API stand-in and a webhook target that answers after a set
 * latency. Run: `npm run bench` (builds first). Prints each figure next to its goal with pass/fail.
 *
 * - Throughput: synchronous runs all on partition 0, from the first produce to the last status
 *   report, with the agent's default concurrency and again with `AGENT_MAX_IN_FLIGHT=1` (the
 *   baseline, on fewer runs: one at a time it would take minutes).
 * - Agent CPU time per run over the throughput window, from /proc (user + system).
 * - Added latency, produce to the target receiving the request, at a steady rate on partition 0.
 * - Port API calls per run against SPEC §7, token requests over the whole benchmark.
 * - Peak RSS of the agent (VmHWM).
 *
 * The agent logs at INFO, what operators run, so logging counts in its CPU time. Linux only
 * (/proc). `BENCH_AGENT_PROFILE=<dir>` also writes the main agent's V8 CPU profile there and prints
 * where the throughput window's CPU time went (profiling slows the agent: figures are then not
 * the reference ones). An `AGENT_MAX_IN_FLIGHT` in the environment is passed to the main agent.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
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
import type { PortStandIn } from '../test/support/port-stand-in.js';
import { waitFor } from '../test/support/wait.js';
import { startWebhookTarget } from '../test/support/webhook-target.js';
import type { WebhookTarget } from '../test/support/webhook-target.js';
import { agentSetup, startConsumingAgent } from '../test/integration/harness.js';
import type { AgentSetup } from '../test/integration/harness.js';
import { readProfileOf, summarizeProfile } from './cpu-profile.js';
import type { MonotonicWindowUs, ProfileSummary } from './cpu-profile.js';
import { cpuTimeMs, peakRssBytes } from './proc-stats.js';

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
const STATUS_ROUTE = 'PATCH /v1/actions/runs/:runId';
// SPEC §7 for a synchronous run answered 200 with a JSON body: 7 run logs (received, preparing,
// sending, completed, reporting the response, response reported, finished), the response patch
// and the status patch.
const EXPECTED_CALLS_PER_RUN = 9;
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
} as const;

/** The parts of the benchmark every scenario uses. */
interface Bench {
  broker: Broker;
  port: PortStandIn;
  target: WebhookTarget;
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
 * When each run's status report reached the stand-in. Reads only the calls recorded since the last
 * poll: scanning all of them (tens of thousands) every few ms would load the machine being measured.
 */
function createStatusReports(port: PortStandIn): { reportedAt: Map<string, number>; poll(): void } {
  const reportedAt = new Map<string, number>();
  let scanned = 0;
  return {
    reportedAt,
    poll() {
      for (; scanned < port.calls.length; scanned += 1) {
        const call = port.calls[scanned];
        const runId = call?.params.runId;
        if (call?.route === STATUS_ROUTE && runId !== undefined && !reportedAt.has(runId)) reportedAt.set(runId, call.at);
      }
    },
  };
}

async function waitForStatusReports(bench: Bench, agent: MeasuredAgent, runIds: string[], description: string): Promise<Map<string, number>> {
  const reports = createStatusReports(bench.port);
  await waitFor(
    () => {
      agent.assertRunning();
      reports.poll();
      return runIds.every((runId) => reports.reportedAt.has(runId));
    },
    {
      timeoutMs: COMPLETION_START_SLACK_MS + runIds.length * COMPLETION_BUDGET_PER_RUN_MS,
      intervalMs: POLL_INTERVAL_MS,
      description: `the status reports of ${description}`,
    },
  );
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

/** Produces all runs to one partition, then times from the first produce to the last status report. */
async function measureThroughput(bench: Bench, agent: MeasuredAgent, runs: number): Promise<ThroughputResult> {
  const measured = benchRuns(bench, `${agent.setup.orgId}_throughput`, runs);
  const runIds = measured.map((run) => run.runId);
  const before = cpuSnapshot(bench, agent.pid);
  const monotonicStartUs = monotonicNowUs();
  const firstProducedAt = Date.now();
  await produceInBatches(bench.broker.brokers, agent.setup.runsTopic, measured);
  const reportedAt = await waitForStatusReports(bench, agent, runIds, `${runs} runs`);
  const after = cpuSnapshot(bench, agent.pid);
  const lastReportedAt = Math.max(...reportedAt.values());
  const windowMs = lastReportedAt - firstProducedAt;
  return {
    runIds,
    runsPerSecond: (runs * 1000) / windowMs,
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

/** Runs whose status patch said SUCCESS: a benchmark of failing runs would measure the wrong path. */
function successfulRuns(port: PortStandIn, runIds: string[]): number {
  const measured = new Set(runIds);
  const succeeded = new Set<string>();
  for (const call of port.calls) {
    const runId = call.params.runId;
    const body = call.body as { status?: unknown } | undefined;
    if (call.route === STATUS_ROUTE && runId !== undefined && measured.has(runId) && body?.status === 'SUCCESS') succeeded.add(runId);
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
 * Starts an agent on a fresh org (fresh topics and group), lets it handle the warm-up runs, gives
 * it to `measure`, and stops it whatever happens.
 */
async function withWarmAgent<T>(
  bench: Bench,
  extra: Record<string, string>,
  measure: (agent: MeasuredAgent) => Promise<T>,
): Promise<{ result: T; exit: AgentExit; pid: number }> {
  const setup = agentSetup(bench.broker, bench.port, agentEnv(extra));
  // Produced before the agent starts, the warm-up runs also create the topic it is assigned.
  const warmUpRuns = benchRuns(bench, `${setup.orgId}_warmup`, WARMUP_RUNS);
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
    await waitForStatusReports(bench, agent, warmUpRuns.map((run) => run.runId), `${WARMUP_RUNS} warm-up runs`);
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

interface MainAgentResult {
  throughput: ThroughputResult;
  latency: LatencyResult;
  peakRssBytes: number;
  profile: ProfileSummary | undefined;
}

/** The agent as operators run it (default concurrency): throughput and CPU, then latency. */
async function benchMainAgent(bench: Bench, profileDirectory: string | undefined): Promise<MainAgentResult> {
  const extra: Record<string, string> = {};
  const maxInFlight = process.env.AGENT_MAX_IN_FLIGHT;
  if (maxInFlight !== undefined) extra.AGENT_MAX_IN_FLIGHT = maxInFlight;
  if (profileDirectory !== undefined) {
    extra.NODE_OPTIONS = `--import ${PROFILER_PRELOAD.href}`;
    extra.BENCH_AGENT_PROFILE_DIR = profileDirectory;
  }
  const { result, exit, pid } = await withWarmAgent(bench, extra, async (agent) => {
    const throughput = await measureThroughput(bench, agent, THROUGHPUT_RUNS);
    const latency = await measureLatency(bench, agent);
    return { throughput, latency, peakRssBytes: peakRssBytes(agent.pid) };
  });
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

const formatNumber = (value: number, digits: number): string =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function resultRows(main: MainAgentResult, oneInFlight: OneInFlightResult, bench: Bench): Row[] {
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
      figure: 'Port API calls per run (as the official agent: 7 logs + response + status)',
      measured: `${formatNumber(calls.average, 2)} (min ${calls.min}, max ${calls.max})`,
      goal: `= ${EXPECTED_CALLS_PER_RUN}`,
      isPass: calls.min === EXPECTED_CALLS_PER_RUN && calls.max === EXPECTED_CALLS_PER_RUN,
    },
    {
      figure: 'token requests, whole benchmark (2 agent processes)',
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
  console.log(`agent benchmark: \`${COMMAND}\` (the built agent, dist/src/cli.js, as its own process)`);
  console.log(
    `commit ${gitCommit()}, Node ${process.version}, ${cores.length} CPUs (${cores[0]?.model.trim() ?? 'unknown model'}), load average ${machineLoad()}`,
  );
  console.log(
    `target answers 200 with a JSON body after ${TARGET_LATENCY_MS} ms; runs synchronous, all on partition ${PARTITION}; ` +
      `produced ${PRODUCE_BATCH_SIZE} per call (latency: one per call); ${WARMUP_RUNS} warm-up runs per agent first; LOG_LEVEL=INFO; KAFKA_CONSUMER_FETCH_MAX_WAIT_MS=${FETCH_MAX_WAIT_MS}; ` +
      `AGENT_MAX_IN_FLIGHT=${process.env.AGENT_MAX_IN_FLIGHT ?? 'default'} (main agent)`,
  );
}

async function startBench(): Promise<Bench> {
  const broker = await startBroker();
  const port = await startPortStandIn();
  const target = await startWebhookTarget({
    secret: port.clientSecret,
    respond: () => ({ status: 200, body: { deployed: true }, delayMs: TARGET_LATENCY_MS }),
  });
  return { broker, port, target };
}

async function stopBench(bench: Bench): Promise<void> {
  await disconnectKafkaClients();
  await Promise.allSettled([bench.target.close(), bench.port.close()]);
  await bench.broker.stop();
}

// The agents and the broker are child processes: an interrupted benchmark must not leave them
// running (test/support kills its children on exit, which a signal alone does not trigger).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const profileDirectory = process.env.BENCH_AGENT_PROFILE === undefined ? undefined : resolve(process.env.BENCH_AGENT_PROFILE);
if (profileDirectory !== undefined) mkdirSync(profileDirectory, { recursive: true });
printHeader();
const bench = await startBench();
try {
  console.log(`\nmain agent: ${WARMUP_RUNS} warm-up runs, ${formatNumber(THROUGHPUT_RUNS, 0)} runs for throughput, ${LATENCY_RUNS} runs at ${LATENCY_RUNS_PER_SECOND} runs/s for latency…`);
  const main = await benchMainAgent(bench, profileDirectory);
  console.log(`baseline agent (AGENT_MAX_IN_FLIGHT=1): ${WARMUP_RUNS} warm-up runs, ${BASELINE_RUNS} runs…\n`);
  const oneInFlight = await benchOneInFlight(bench);
  printTable(resultRows(main, oneInFlight, bench));
  printLoad(main.throughput.load);
  if (main.profile !== undefined) printProfile(main.profile);
} catch (error) {
  console.error(`\nThe benchmark could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopBench(bench);
}
