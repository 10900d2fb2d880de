/**
 * `npm run test:faults`: the built agent under faults, each in a world of its own (broker, Port
 * stand-in, webhook target, org): the agent SIGKILLed and restarted, the broker frozen past the
 * session timeout, the broker killed for good, the Port API answering 503, the target refusing
 * connections, and one of two replicas SIGKILLed. Prints a table (sent, delivered, reported,
 * duplicates, lost) with the reasons behind each row, and exits 1 when a row fails: a run lost, a
 * duplicate the fault does not explain, or a scenario check not holding.
 *
 * `npm run test:faults -- freeze replica` runs only the scenarios with those keys.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openScenario } from './faults/context.js';
import { allPassed, formatReport } from './faults/report.js';
import type { Row, ScenarioOutcome } from './faults/report.js';
import { SCENARIOS } from './faults/scenarios.js';
import type { Scenario } from './faults/scenarios.js';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;
/** A scenario normally takes 20–60 s; past this it is stuck, and the rest must still run. */
const SCENARIO_TIMEOUT_MS = 150_000;
const EXTERNAL_BROKERS_ENV = 'TEST_KAFKA_BROKERS';
const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The commit under test, for the log; nothing when this is not a git checkout. */
function currentCommit(): string | undefined {
  const result = spawnSync('git', ['log', '-1', '--format=%h'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function chooseScenarios(keys: string[]): Scenario[] {
  if (keys.length === 0) return [...SCENARIOS];
  const unknown = keys.filter((key) => !SCENARIOS.some((scenario) => scenario.key === key));
  if (unknown.length > 0) {
    console.error(`Unknown scenario ${unknown.join(', ')}; expected some of: ${SCENARIOS.map((scenario) => scenario.key).join(', ')}`);
    process.exit(EXIT_USAGE);
  }
  return SCENARIOS.filter((scenario) => keys.includes(scenario.key));
}

async function runScenario(scenario: Scenario, index: number): Promise<Row> {
  const startedAtMs = Date.now();
  console.log(`\n▶ ${index + 1}. ${scenario.name}`);
  let outcome: ScenarioOutcome | undefined;
  let error: string | undefined;
  try {
    const context = await openScenario(`r_${scenario.key}`);
    try {
      const timeout = delay(SCENARIO_TIMEOUT_MS, undefined, { ref: false }).then(() => {
        throw new Error(`gave up after ${SCENARIO_TIMEOUT_MS / 1000} s`);
      });
      outcome = await Promise.race([scenario.run(context), timeout]);
    } finally {
      // Whatever state the scenario left (a frozen broker, a hung agent): end it all before the next.
      await context.close();
    }
  } catch (caught) {
    error = describeError(caught);
    console.log(`  ✗ ${error}`);
  }
  return { name: scenario.name, durationMs: Date.now() - startedAtMs, outcome, error };
}

async function main(): Promise<number> {
  const scenarios = chooseScenarios(process.argv.slice(2));
  if (process.env[EXTERNAL_BROKERS_ENV]) {
    // Freezing and killing need a broker of our own; test/support/broker.ts would hand out the external one.
    console.log(`${EXTERNAL_BROKERS_ENV} is ignored: every fault scenario freezes or kills a local broker of its own`);
    delete process.env[EXTERNAL_BROKERS_ENV];
  }
  const commit = currentCommit();
  console.log(`Fault tests${commit ? ` at ${commit}` : ''}: ${scenarios.length} scenarios`);
  const rows: Row[] = [];
  for (const [index, scenario] of scenarios.entries()) rows.push(await runScenario(scenario, index));
  console.log(`\n${formatReport(rows)}`);
  return allPassed(rows) ? EXIT_OK : EXIT_FAILED;
}

// The 'exit' handlers of test/support SIGKILL every broker and agent still running.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(EXIT_INTERRUPTED));

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`fault tests failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(EXIT_FAILED);
  },
);
