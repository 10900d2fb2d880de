/**
 * Judging a scenario's outcome and printing the table, the reasons behind each row and the
 * definitions of the columns.
 */
import { COMMIT_WAIT_TIMEOUT_MS } from './context.js';
import { describeLost } from './tally.js';
import type { Tally } from './tally.js';

/** A condition a scenario needs beyond "nothing lost", stated as what should hold. */
export interface Check {
  ok: boolean;
  text: string;
}

export interface ScenarioOutcome {
  tally: Tally;
  /**
   * Replaces "sent but not delivered and reported" where lost means something narrower: with the
   * broker killed for good, the runs it had committed that were not delivered and reported.
   */
  lostRunIds?: string[];
  /** When the fault was in effect: a duplicate is explained by deliveries on both sides of it. */
  faultWindow: { startMs: number; endMs: number };
  /** Why this fault may deliver a run twice; undefined when it must not. */
  duplicateCause?: string;
  checks: Check[];
  notes: string[];
}

export interface Row {
  name: string;
  durationMs: number;
  /** Undefined when the scenario could not run to its end (then `error` says why). */
  outcome: ScenarioOutcome | undefined;
  error: string | undefined;
}

export interface Verdict {
  pass: boolean;
  /** What made the row fail; empty when it passed. */
  problems: string[];
  /** What the numbers mean for this row (duplicates explained, checks that held). */
  explanations: string[];
}

const MAX_EXAMPLES = 3;

export const DEFINITIONS = [
  'sent        runs produced and acknowledged by the broker (signed action runs, invocationMethod.synchronized = true)',
  'delivered   distinct run ids the webhook target received at least once (run id from the body\'s context.runId)',
  'reported    distinct run ids with a final status in the Port stand-in (an accepted PATCH /v1/actions/runs/:runId with a status, or a run-log line with a terminationStatus)',
  'duplicates  target requests beyond the first per run id',
  `lost        run ids sent but not both delivered and reported once the agent had committed every run (or after a ${COMMIT_WAIT_TIMEOUT_MS / 1000} s wait);`,
  '            "broker killed for good": run ids committed before the kill but not both delivered and reported',
  'pass        lost = 0; duplicates only where the fault explains them (SIGKILL, lost member, broker freeze: every duplicated',
  '            run delivered before the fault ended and again after it began); every check of the scenario holds',
];

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Duplicated runs whose deliveries do not straddle the fault, with their delivery times relative to its start. */
function unexplainedDuplicates(outcome: ScenarioOutcome): string[] {
  const { startMs, endMs } = outcome.faultWindow;
  const unexplained: string[] = [];
  for (const [runId, times] of outcome.tally.deliveries) {
    if (times.length < 2) continue;
    const first = times[0] ?? 0;
    const last = times[times.length - 1] ?? 0;
    if (first <= endMs && last >= startMs) continue;
    const relative = times.map((time) => `${time >= startMs ? '+' : ''}${((time - startMs) / 1000).toFixed(1)} s`);
    unexplained.push(`${runId} at ${relative.join(', ')}`);
  }
  return unexplained;
}

function duplicatedRuns(tally: Tally): string[] {
  return [...tally.deliveries].filter(([, times]) => times.length > 1).map(([runId]) => runId);
}

function lostRunIds(outcome: ScenarioOutcome): string[] {
  return outcome.lostRunIds ?? outcome.tally.lostRunIds;
}

export function judge(row: Row): Verdict {
  const { outcome } = row;
  if (!outcome) return { pass: false, problems: [`did not complete: ${row.error ?? 'unknown error'}`], explanations: [] };
  const problems: string[] = [];
  const explanations: string[] = [];
  const lost = lostRunIds(outcome);
  if (lost.length > 0) problems.push(`${lost.length} lost: ${describeLost(outcome.tally, lost).join('; ')}`);

  const { duplicates } = outcome.tally;
  const duplicated = duplicatedRuns(outcome.tally);
  if (duplicates > 0 && outcome.duplicateCause === undefined) {
    problems.push(`${plural(duplicates, 'duplicate')} where this fault must cause none (e.g. ${duplicated.slice(0, MAX_EXAMPLES).join(', ')})`);
  } else if (duplicates > 0) {
    const unexplained = unexplainedDuplicates(outcome);
    if (unexplained.length > 0) {
      const window = `${((outcome.faultWindow.endMs - outcome.faultWindow.startMs) / 1000).toFixed(1)} s`;
      problems.push(
        `${unexplained.length} duplicated runs not delivered both before the fault ended and after it began (fault from 0 to +${window}; e.g. ${unexplained.slice(0, MAX_EXAMPLES).join('; ')})`,
      );
    } else {
      explanations.push(`${plural(duplicates, 'duplicate')} (${plural(duplicated.length, 'run')}): ${outcome.duplicateCause}`);
    }
  }
  if (duplicates > 0) {
    const { total, withIdempotencyKey } = outcome.tally.repeatedRunRequests;
    explanations.push(`Idempotency-Key = run id on ${withIdempotencyKey} of the ${total} requests of runs delivered more than once (a service can drop the repeats)`);
  }
  for (const check of outcome.checks) {
    if (check.ok) explanations.push(`ok: ${check.text}`);
    else problems.push(`not so: ${check.text}`);
  }
  return { pass: problems.length === 0, problems, explanations };
}

function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const isNumeric = (column: number): boolean => column >= 2 && column <= 6;
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, column) => (isNumeric(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (isNumeric(column) ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)];
}

/** The table, then each row's reasons, then the definitions. */
export function formatReport(rows: Row[]): string {
  const verdicts = rows.map(judge);
  const header = ['#', 'scenario', 'sent', 'delivered', 'reported', 'duplicates', 'lost', 'time', 'result'];
  const cells = rows.map((row, index) => {
    const tally = row.outcome?.tally;
    const lost = row.outcome ? String(lostRunIds(row.outcome).length) : '–';
    const count = (value: number | undefined): string => (value === undefined ? '–' : String(value));
    return [
      String(index + 1),
      row.name,
      count(tally?.sent),
      count(tally?.delivered),
      count(tally?.reported),
      count(tally?.duplicates),
      lost,
      `${Math.round(row.durationMs / 1000)} s`,
      verdicts[index]?.pass ? 'pass' : 'FAIL',
    ];
  });
  const lines = formatTable(header, cells);
  lines.push('');
  rows.forEach((row, index) => {
    const verdict = verdicts[index];
    lines.push(`${index + 1}. ${row.name}: ${verdict?.pass ? 'pass' : 'FAIL'}`);
    for (const problem of verdict?.problems ?? []) lines.push(`   ✗ ${problem}`);
    for (const explanation of verdict?.explanations ?? []) lines.push(`   - ${explanation}`);
    for (const note of row.outcome?.notes ?? []) lines.push(`   - ${note}`);
  });
  lines.push('', ...DEFINITIONS);
  return lines.join('\n');
}

export function allPassed(rows: Row[]): boolean {
  return rows.every((row) => judge(row).pass);
}
