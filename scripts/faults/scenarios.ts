/**
 * The fault scenarios. Each starts the agent(s) of a fresh world (see context.ts), puts a load of
 * runs on the topic, injects one fault while runs are in flight, lets the system recover, waits
 * until the agent has committed every run, and says what it saw.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { isConsuming } from '../../test/support/harness.js';
import type { AgentLogLine, AgentProcess } from '../../test/support/agent-process.js';
import type { PortRoute } from '../../test/support/port-stand-in.js';
import { waitFor } from '../../test/support/wait.js';
import { AGENT_FAULT_ENV, AGENT_JOIN_TIMEOUT_MS, isWarnOrError } from './context.js';
import type { ScenarioContext } from './context.js';
import type { Check, ScenarioOutcome } from './report.js';
import { TOPIC_PARTITIONS } from './run-load.js';
import type { LoadPlan, RunLoad } from './run-load.js';
import { deliveredCount } from './tally.js';

export interface Scenario {
  /** Short, for run ids and for choosing scenarios on the command line. */
  key: string;
  name: string;
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}

/** Faster than one agent drains with the target's latency, so a backlog is in hand when the fault hits. */
const BUSY_LOAD: LoadPlan = { runs: 300, runsPerSecond: 100 };
/** Spread over the Port outage, so runs arrive before, during and after it. */
const PORT_OUTAGE_LOAD: LoadPlan = { runs: 300, runsPerSecond: 12 };
/** Spread over the target outage. */
const TARGET_OUTAGE_LOAD: LoadPlan = { runs: 300, runsPerSecond: 20 };
/** The fault hits once this many runs were delivered: the agent is mid-load, not starting. */
const DELIVERED_BEFORE_FAULT = 100;
/** Slow loads: enough runs before the outage to see the agent working normally first. */
const DELIVERED_BEFORE_OUTAGE = 30;

/** Longer than the 6 s session timeout: the group expires the member (docs/development.md). */
const BROKER_FREEZE_MS = 20_000;
/** How long the agent must survive a broker that is gone for good. */
const BROKER_GONE_OBSERVATION_MS = 20_000;
const PORT_OUTAGE_MS = 20_000;
const TARGET_OUTAGE_MS = 10_000;
const OUTAGE_STATUS = 503;
/** The token keeps working during the Port outage: what fails is the API the agent reports to. */
const TOKEN_ROUTE = 'POST /v1/auth/access_token';
const DELIVERY_WAIT_TIMEOUT_MS = 30_000;
const REBUILD_MESSAGE = 'Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer';
const JOINED_MESSAGE = 'joined the consumer group';
const KAFKA_TROUBLE = /kafka|broker|connect|coordinator/i;
const MAX_LOGGED_MESSAGES = 4;
const MAX_EXAMPLES = 3;
const STATUS_PATCH_ROUTE: PortRoute = 'PATCH /v1/actions/runs/:runId';
/** A success's status rides on its last run-log line; failures keep their PATCH. */
const RUN_LOG_ROUTE: PortRoute = 'POST /v1/actions/runs/:runId/logs';
const SESSION_TIMEOUT_SECONDS = Number(AGENT_FAULT_ENV.KAFKA_CONSUMER_SESSION_TIMEOUT_MS) / 1000;
/** Two members joining the mock broker's group took up to about 20 s of rebalances here. */
const GROUP_SETTLE_TIMEOUT_MS = 60_000;

// ─── shared pieces ─────────────────────────────────────────────────────────────────────────────

/** `text` states what should hold, e.g. "the agent is still running". */
function aliveCheck(context: ScenarioContext, agent: AgentProcess, text: string): Check {
  const exit = context.exitOf(agent);
  return { ok: exit === undefined, text: exit === undefined ? text : `${text} (it exited: ${JSON.stringify(exit)})` };
}

/** The status an agent's health server answers on `path`, or undefined when it does not answer. */
async function probeStatus(agent: AgentProcess, path: '/healthz' | '/readyz'): Promise<number | undefined> {
  const port = agent.logs.find((line) => line.msg === 'health server listening')?.port;
  if (typeof port !== 'number') return undefined;
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  } catch {
    return undefined;
  }
}

function committedCheck(isAllCommitted: boolean): Check {
  return { ok: isAllCommitted, text: 'the agent committed every run after the recovery' };
}

/** Produces the rest of the load and waits until the agent has handled all of it. */
async function finishLoad(context: ScenarioContext, load: RunLoad): Promise<boolean> {
  await load.finished;
  context.log(`all ${load.sent.length} runs sent; waiting for the agent to commit them`);
  const isAllCommitted = await context.waitUntilAllCommitted(load);
  context.log(isAllCommitted ? 'every run committed' : 'NOT every run committed in time');
  return isAllCommitted;
}

/** Distinct run ids an agent logged about: the runs it handled, whatever it did with them. */
function runsHandledBy(agent: AgentProcess): number {
  return new Set(agent.logs.map((line) => line.runId).filter((runId) => typeof runId === 'string')).size;
}

/** `"msg" ×3 (warn, err: …)`, for the warn/error lines among `lines`, most frequent first. */
function summarizeComplaints(lines: readonly AgentLogLine[]): string[] {
  const byMessage = new Map<string, { count: number; level: unknown; err: unknown }>();
  for (const line of lines) {
    const message = typeof line.msg === 'string' ? line.msg : JSON.stringify(line);
    const entry = byMessage.get(message) ?? { count: 0, level: line.level, err: line.err };
    entry.count += 1;
    byMessage.set(message, entry);
  }
  return [...byMessage]
    .sort((left, right) => right[1].count - left[1].count)
    .slice(0, MAX_LOGGED_MESSAGES)
    .map(([message, { count, level, err }]) => `"${message}" ×${count} (${String(level)}${errorText(err)})`);
}

function errorText(err: unknown): string {
  if (err === undefined) return '';
  const text = typeof err === 'string' ? err : JSON.stringify(err);
  return `, err: ${text.length > 120 ? `${text.slice(0, 119)}…` : text}`;
}

/** The runs-topic partitions of an agent's latest group join (as it logged them). */
function runsPartitionsOf(context: ScenarioContext, agent: AgentProcess): number[] {
  const joins = agent.logs.filter((line) => line.msg === JOINED_MESSAGE);
  const assignment = joins[joins.length - 1]?.assignment;
  const partitions = typeof assignment === 'object' && assignment !== null ? (assignment as Record<string, unknown>)[context.setup.runsTopic] : undefined;
  return Array.isArray(partitions) ? partitions.filter((partition): partition is number => typeof partition === 'number') : [];
}

/** Whether the agents' latest joins split the runs partitions between them: each has some, none is left out. */
function isSplitBetween(context: ScenarioContext, agents: readonly AgentProcess[]): boolean {
  const shares = agents.map((agent) => runsPartitionsOf(context, agent));
  const held = new Set(shares.flat());
  return shares.every((share) => share.length > 0) && held.size === TOPIC_PARTITIONS && shares.flat().length === TOPIC_PARTITIONS;
}

function describeShares(context: ScenarioContext, agents: readonly AgentProcess[]): string {
  return agents.map((agent) => `[${runsPartitionsOf(context, agent).join(',')}]`).join(' and ');
}

/** When the agent wrote a log line (pino's `time`), in ms since the epoch. */
function logTimeOf(line: AgentLogLine | undefined): number | undefined {
  const time = line?.time;
  if (typeof time === 'number') return time;
  return typeof time === 'string' ? Date.parse(time) : undefined;
}

function firstDeliveryAfter(context: ScenarioContext, load: RunLoad, timeMs: number): number | undefined {
  let first: number | undefined;
  for (const times of context.tally(load).deliveries.values()) {
    for (const time of times) if (time >= timeMs && (first === undefined || time < first)) first = time;
  }
  return first;
}

/** `r_1: report calls answered 503 ×6 from +2.0 s to +11.8 s after the outage began`. */
function reportHistory(context: ScenarioContext, runId: string, outageStartMs: number): string {
  const reports = context.port.apiCallsForRun(runId).filter((call) => call.route === STATUS_PATCH_ROUTE || call.route === RUN_LOG_ROUTE);
  const first = reports[0];
  const last = reports[reports.length - 1];
  if (!first || !last) return `${runId}: no report reached the Port API`;
  const since = (timeMs: number): string => `+${((timeMs - outageStartMs) / 1000).toFixed(1)} s`;
  const answers = [...new Set(reports.map((call) => String(call.status ?? 'no answer')))].join('/');
  return `${runId}: report calls answered ${answers} ×${reports.length} from ${since(first.at)} to ${since(last.at)} after the outage began, and no final status accepted`;
}

function failuresReportedSince(context: ScenarioContext, sinceMs: number): number {
  return context.port
    .callsTo(STATUS_PATCH_ROUTE)
    .filter((call) => call.at >= sinceMs && call.status !== undefined && call.status < 400)
    .filter((call) => typeof call.body === 'object' && call.body !== null && (call.body as Record<string, unknown>).status === 'FAILURE').length;
}

function statusBreakdown(statuses: ReadonlyMap<string, { status: string }>): string {
  const counts = new Map<string, number>();
  for (const { status } of statuses.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
  return [...counts].map(([status, count]) => `${count} ${status}`).join(', ') || 'none';
}

// ─── the scenarios ─────────────────────────────────────────────────────────────────────────────

async function agentKilled(context: ScenarioContext): Promise<ScenarioOutcome> {
  const first = await context.startConsumingAgent();
  const load = context.startLoad(BUSY_LOAD);
  await context.waitForDelivered(DELIVERED_BEFORE_FAULT);
  const killedAtMs = Date.now();
  context.log(`SIGKILL the agent (${deliveredCount(context.target)} runs delivered, ${load.sent.length} sent)`);
  first.kill('SIGKILL');
  await first.exited;
  const second = context.startAgent();
  await second.waitForLog(isConsuming, AGENT_JOIN_TIMEOUT_MS);
  context.log('the restarted agent joined the group');
  const isAllCommitted = await finishLoad(context, load);
  return {
    tally: context.tally(load),
    faultWindow: { startMs: killedAtMs, endMs: killedAtMs },
    duplicateCause: 'runs in hand at the SIGKILL (delivered, not yet committed), delivered again by the restarted agent from the last committed offset',
    checks: [committedCheck(isAllCommitted), aliveCheck(context, second, 'the restarted agent is still running')],
    notes: [`killed at ${context.at(killedAtMs)} after ${runsHandledBy(first)} runs reached the first agent`],
  };
}

async function brokerFrozen(context: ScenarioContext): Promise<ScenarioOutcome> {
  const agent = await context.startConsumingAgent();
  const load = context.startLoad(BUSY_LOAD);
  await context.waitForDelivered(DELIVERED_BEFORE_FAULT);
  // A frozen broker would hold the producer's sends too; the load goes on after the thaw.
  await load.pause();
  const logsBefore = agent.logs.length;
  const frozenAtMs = Date.now();
  context.broker.freeze();
  context.log(`kill -STOP the broker for ${BROKER_FREEZE_MS / 1000} s (${load.sent.length} runs sent)`);
  await delay(BROKER_FREEZE_MS);
  context.broker.thaw();
  const thawedAtMs = Date.now();
  context.log('kill -CONT the broker; producing the rest of the load');
  load.resume();
  const isAllCommitted = await finishLoad(context, load);
  const afterFreeze = agent.logs.slice(logsBefore);
  const rebuiltAt = afterFreeze.find((line) => line.msg === REBUILD_MESSAGE);
  const resumedAtMs = firstDeliveryAfter(context, load, thawedAtMs);
  // Until the member rejoins, the freeze still shows: a fetch answered at the thaw is delivered,
  // and its commit fails like those of the runs in hand during the freeze.
  const rejoinedAtMs = logTimeOf(afterFreeze.find((line) => line.msg === JOINED_MESSAGE && (logTimeOf(line) ?? 0) >= thawedAtMs));
  return {
    tally: context.tally(load),
    faultWindow: { startMs: frozenAtMs, endMs: rejoinedAtMs ?? thawedAtMs },
    duplicateCause: 'runs in hand during the freeze or fetched just before it: their commits failed (the group had expired the member), so the rejoined consumer delivered them again',
    checks: [
      committedCheck(isAllCommitted),
      aliveCheck(context, agent, 'the agent is still running'),
      { ok: resumedAtMs !== undefined, text: 'the agent delivered runs again after the thaw (it rejoined and went on)' },
    ],
    notes: [
      `froze at ${context.at(frozenAtMs)}, thawed at ${context.at(thawedAtMs)}, rejoined the group at ${rejoinedAtMs === undefined ? 'no logged join' : context.at(rejoinedAtMs)}; first delivery after the thaw at ${resumedAtMs === undefined ? 'never' : context.at(resumedAtMs)}`,
      rebuiltAt === undefined
        ? 'the agent did not need to rebuild its consumer (kafkajs recovered by itself)'
        : 'the agent rebuilt the consumer kafkajs had stopped for good ("rebuilding the consumer" logged)',
      `logged after the freeze: ${summarizeComplaints(afterFreeze.filter(isWarnOrError)).join('; ') || 'no warnings'}`,
    ],
  };
}

async function brokerGone(context: ScenarioContext): Promise<ScenarioOutcome> {
  const agent = await context.startConsumingAgent();
  const load = context.startLoad(BUSY_LOAD);
  await context.waitForDelivered(DELIVERED_BEFORE_FAULT);
  // Read while the load goes on, just before the kill: commits landing in between make this a
  // lower bound of what was committed, never more; and runs are still in hand when the broker dies.
  const committed = await context.committedRunIds(load);
  await load.stop();
  await context.disconnectProducer();
  const logsBefore = agent.logs.length;
  const killedAtMs = Date.now();
  await context.broker.stop();
  context.log(`killed the broker for good (${load.sent.length} runs sent, at least ${committed.length} committed); watching the agent for ${BROKER_GONE_OBSERVATION_MS / 1000} s`);
  await delay(BROKER_GONE_OBSERVATION_MS);

  const tally = context.tally(load);
  const lostRunIds = committed.filter((runId) => !tally.deliveries.has(runId) || !tally.statuses.has(runId));
  const complaints = agent.logs.slice(logsBefore).filter(isWarnOrError);
  const aboutKafka = complaints.filter((line) => KAFKA_TROUBLE.test(`${String(line.msg)} ${JSON.stringify(line.err ?? '')}`));
  const committedIds = new Set(committed);
  const uncommitted = load.sent.filter((runId) => !committedIds.has(runId));
  const uncommittedDone = uncommitted.filter((runId) => tally.deliveries.has(runId) && tally.statuses.has(runId)).length;
  const lastComplaintAtMs = logTimeOf(aboutKafka[aboutKafka.length - 1]);
  const [liveness, readiness] = [await probeStatus(agent, '/healthz'), await probeStatus(agent, '/readyz')];
  return {
    tally,
    lostRunIds,
    faultWindow: { startMs: killedAtMs, endMs: killedAtMs },
    checks: [
      aliveCheck(context, agent, `the agent is still running ${BROKER_GONE_OBSERVATION_MS / 1000} s after the broker died`),
      { ok: aboutKafka.length > 0, text: `the agent logged at warn/error that Kafka is unreachable (${aboutKafka.length} lines)` },
      { ok: liveness === 200, text: `the agent is alive: /healthz answered ${String(liveness)}` },
      { ok: readiness === 503, text: `the agent is not ready: /readyz answered ${String(readiness)}` },
    ],
    notes: [
      `${committed.length} runs committed before the kill: every one delivered and reported counts as kept`,
      `${uncommitted.length} runs not committed before the kill (${uncommittedDone} of them delivered and reported, from the agent's hands) went down with the broker's data; not counted as lost`,
      `logged after the kill: ${summarizeComplaints(complaints).join('; ') || 'nothing at warn/error'}`,
      lastComplaintAtMs === undefined
        ? 'no warn/error line about Kafka after the kill'
        : `still trying: its last warn/error line about Kafka came ${((lastComplaintAtMs - killedAtMs) / 1000).toFixed(1)} s after the kill (watched for ${BROKER_GONE_OBSERVATION_MS / 1000} s)`,
    ],
  };
}

async function portOutage(context: ScenarioContext): Promise<ScenarioOutcome> {
  const agent = await context.startConsumingAgent();
  const load = context.startLoad(PORT_OUTAGE_LOAD);
  await context.waitForDelivered(DELIVERED_BEFORE_OUTAGE);
  // The outage begins as a run reports to Port: the worst moment, when a run that has been
  // delivered depends on Port alone. Starting at a random moment finds the same loss only by luck.
  context.port.failFor(PORT_OUTAGE_MS, { status: OUTAGE_STATUS }, { except: [TOKEN_ROUTE], startingWith: RUN_LOG_ROUTE });
  const firstRefused = await waitFor(() => context.port.calls.find((call) => call.status === OUTAGE_STATUS), {
    timeoutMs: DELIVERY_WAIT_TIMEOUT_MS,
    description: 'the Port outage to begin with a report',
  });
  const startMs = firstRefused.at;
  context.log(`the Port API answers ${OUTAGE_STATUS} to every call but the token's for ${PORT_OUTAGE_MS / 1000} s, from a run's report on`);
  await delay(startMs + PORT_OUTAGE_MS - Date.now());
  const endMs = Date.now();
  context.log('the Port API answers again');
  const isAllCommitted = await finishLoad(context, load);
  const tally = context.tally(load);
  const refusedCalls = context.port.calls.filter((call) => call.status === OUTAGE_STATUS).length;
  return {
    tally,
    faultWindow: { startMs, endMs },
    checks: [committedCheck(isAllCommitted), aliveCheck(context, agent, 'the agent is still running')],
    notes: [
      `${refusedCalls} Port API calls answered ${OUTAGE_STATUS}; final statuses: ${statusBreakdown(tally.statuses)}`,
      ...tally.lostRunIds.slice(0, MAX_EXAMPLES).map((runId) => reportHistory(context, runId, startMs)),
    ],
  };
}

async function targetOutage(context: ScenarioContext): Promise<ScenarioOutcome> {
  const agent = await context.startConsumingAgent();
  const load = context.startLoad(TARGET_OUTAGE_LOAD);
  await context.waitForDelivered(DELIVERED_BEFORE_OUTAGE);
  const startMs = Date.now();
  await context.target.stopListening();
  context.log(`the target refuses connections for ${TARGET_OUTAGE_MS / 1000} s`);
  await delay(TARGET_OUTAGE_MS);
  await context.target.listenAgain();
  const endMs = Date.now();
  context.log('the target listens again on the same port');
  const isAllCommitted = await finishLoad(context, load);
  const tally = context.tally(load);
  return {
    tally,
    faultWindow: { startMs, endMs },
    checks: [committedCheck(isAllCommitted), aliveCheck(context, agent, 'the agent is still running')],
    notes: [
      `final statuses: ${statusBreakdown(tally.statuses)}`,
      `${failuresReportedSince(context, endMs)} runs reported FAILURE after the target was listening again (${context.at(endMs)})`,
    ],
  };
}

async function replicaKilled(context: ScenarioContext): Promise<ScenarioOutcome> {
  const survivor = await context.startConsumingAgent();
  const survivorLogsBefore = survivor.logs.length;
  const victim = context.startAgent();
  // The mock broker may take a few rebalances to settle a second member (a failed SyncGroup, a
  // rebuild): load only a settled group, so that duplicates come from the kill alone.
  await waitFor(() => isSplitBetween(context, [survivor, victim]), {
    timeoutMs: GROUP_SETTLE_TIMEOUT_MS,
    description: 'the two replicas to split the runs partitions between them',
  });
  const shares = `runs partitions ${describeShares(context, [survivor, victim])}`;
  context.log(`two replicas hold the ${shares}`);
  const load = context.startLoad(BUSY_LOAD);
  await context.waitForDelivered(DELIVERED_BEFORE_FAULT);
  const handledByVictim = runsHandledBy(victim);
  const killedAtMs = Date.now();
  victim.kill('SIGKILL');
  context.log(`SIGKILL one replica (it had handled ${handledByVictim} runs)`);
  const isAllCommitted = await finishLoad(context, load);
  const takeoverAtMs = logTimeOf(survivor.logs.slice(survivorLogsBefore).find((line) => line.msg === JOINED_MESSAGE && (logTimeOf(line) ?? 0) >= killedAtMs));
  return {
    tally: context.tally(load),
    faultWindow: { startMs: killedAtMs, endMs: killedAtMs },
    duplicateCause: "runs in the killed replica's hands (delivered, not yet committed), delivered again by the survivor once it took the partitions over",
    checks: [
      committedCheck(isAllCommitted),
      aliveCheck(context, survivor, 'the surviving replica is still running'),
      { ok: handledByVictim > 0, text: `the killed replica was handling runs when it died (${handledByVictim} before the kill)` },
    ],
    notes: [
      `before the kill the replicas held ${shares}; after it the survivor held ${describeShares(context, [survivor])}`,
      takeoverAtMs === undefined
        ? 'the survivor logged no group join after the kill'
        : `the survivor rejoined at ${context.at(takeoverAtMs)}, ${((takeoverAtMs - killedAtMs) / 1000).toFixed(1)} s after the kill (session timeout ${SESSION_TIMEOUT_SECONDS} s)`,
    ],
  };
}

export const SCENARIOS: readonly Scenario[] = [
  { key: 'sigkill', name: 'agent SIGKILLed under load, restarted', run: agentKilled },
  { key: 'freeze', name: `broker frozen ${BROKER_FREEZE_MS / 1000} s (kill -STOP), then kill -CONT`, run: brokerFrozen },
  { key: 'broker-gone', name: 'broker killed for good', run: brokerGone },
  { key: 'port-503', name: `Port API answering ${OUTAGE_STATUS} for ${PORT_OUTAGE_MS / 1000} s`, run: portOutage },
  { key: 'target-down', name: `target refusing connections for ${TARGET_OUTAGE_MS / 1000} s`, run: targetOutage },
  { key: 'replica', name: 'two replicas, 4 partitions, one SIGKILLed', run: replicaKilled },
];
