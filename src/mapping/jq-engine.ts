/**
 * The jq dialect (SPEC §5), for mapping files written for the official agent. The engine is
 * Debian's jq 1.6 as one long-lived process: no JavaScript jq implementation handles the official
 * default mapping (`@uri`, `gsub`, `env`), while a resident jq evaluates about 12,500 lines/s here
 * with jq's own semantics (measured here). Spawning jq per evaluation would cost ~30 ms each.
 *
 * Every expression compiled is checked at once by jq itself; the first evaluation starts the
 * process with one program holding every expression as a function. Evaluations asked for in the
 * same tick go as one line in and come back as one line out, in order. An expression's error is
 * caught inside jq and returned as a value, so a line in always gives a line out.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describeError } from '../errors.js';
import { ExpressionSyntaxError } from './expression.js';
import type { Expression, ExpressionCompiler } from './expression.js';

export interface JqEngineOptions {
  /** The environment jq's `env` and `$ENV` see: the agent's secrets already removed. */
  environment: Readonly<Record<string, string>>;
  /** The jq program; `jq` on the PATH by default. */
  jqPath?: string;
}

export interface JqCompiler extends ExpressionCompiler {
  /** Stops the jq process; evaluations after this start it again. */
  close(): void;
}

interface Call {
  expressionId: number;
  input: unknown;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

const SYNTAX_CHECK_TIMEOUT_MS = 5_000;
/** jq's exit status when it refuses the program (jq 1.6 main.c). */
const JQ_COMPILE_ERROR_STATUS = 3;
/**
 * jq 1.6 keeps the arrays and objects being read, and the key of each object, on one stack of 256
 * entries, and exits at a line that needs more, failing every evaluation in flight with it. A batch
 * line takes 3 (`{"inputs":[`); an array takes 1, an object 2 (counted so even when empty).
 */
export const JQ_MAX_INPUT_DEPTH = 253;

/** Whether `value` needs more than `budget` of jq's parsing stack; stops looking once it does. */
function isTooDeepForJq(value: unknown, budget: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const isArray = Array.isArray(value);
  const cost = isArray ? 1 : 2;
  if (budget < cost) return true;
  for (const child of isArray ? value : Object.values(value)) if (isTooDeepForJq(child, budget - cost)) return true;
  return false;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd');
}

function wellFormedReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return wellFormed(value);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    Object.defineProperty(copy, wellFormed(key), { value: member, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/**
 * A batch as one line jq 1.6 reads: it exits at a lone high surrogate escape (`"\ud800"`), which
 * JSON.stringify writes for a lone surrogate, so lone surrogates become U+FFFD (what jq makes of a
 * lone low one). The rebuild only runs when the text may hold one.
 */
function jqLine(value: unknown): string {
  const text = JSON.stringify(value);
  return text.includes('\\ud') ? JSON.stringify(value, wellFormedReplacer) : text;
}

/** jq's first output, null when there is none (pyjq's `first`, as the official agent calls it). */
function firstOutput(functionName: string): string {
  return `([limit(1; ${functionName})] | .[0])`;
}

/**
 * One input line is a batch — `{"inputs": [...], "calls": [[expressionId, inputIndex], ...]}` — and
 * one output line the array of its results, in order: the evaluations a message needs (every
 * field of a template, on the same input) and those of concurrent messages travel together.
 */
/**
 * `input` and `inputs` would read the next batch line from the shared process's input: another
 * run's data. Shadowed, they fail the evaluation that calls them, while `.input`, a field, works.
 */
const NO_INPUT_BUILTINS = [
  'def input: error("the jq builtins input and inputs are not available in mappings");',
  'def inputs: error("the jq builtins input and inputs are not available in mappings");',
].join('\n');

function buildProgram(sources: readonly string[]): string {
  const definitions = sources.map((source, index) => `def __port_agent_expression_${index}: ${source}\n;`).join('\n');
  const dispatch = sources
    .map((_, index) => `${index === 0 ? 'if' : 'elif'} $id == ${index} then (try {v: ${firstOutput(`__port_agent_expression_${index}`)}} catch {e: (. | tostring)})`)
    .join('\n');
  return `${NO_INPUT_BUILTINS}\n${definitions}\ndef __port_agent_dispatch($id):\n${dispatch}\nelse {e: "unknown expression"} end;\n.inputs as $inputs | [.calls[] | .[0] as $id | $inputs[.[1]] | __port_agent_dispatch($id)]`;
}

export function createJqCompiler(options: JqEngineOptions): JqCompiler {
  const jqPath = options.jqPath ?? 'jq';
  const environment = { ...options.environment };
  const sources: string[] = [];
  let process: ChildProcessWithoutNullStreams | undefined;
  let programSize = 0;
  /** Batches sent and not answered yet, oldest first. */
  let inFlight: Call[][] = [];
  /** Calls of the current tick, sent together at its end. */
  let queued: Call[] = [];

  function failInFlight(error: Error): void {
    const failed = inFlight;
    inFlight = [];
    for (const batch of failed) for (const call of batch) call.reject(error);
  }

  function answer(batch: Call[], line: string): void {
    let results: unknown;
    try {
      results = JSON.parse(line) as unknown;
    } catch (error) {
      results = describeError(error);
    }
    if (!Array.isArray(results) || results.length !== batch.length) {
      for (const call of batch) call.reject(new Error('jq answered something unexpected'));
      return;
    }
    batch.forEach((call, position) => {
      const result = results[position] as { v?: unknown; e?: unknown };
      if (result.e !== undefined) call.reject(new Error(typeof result.e === 'string' ? result.e : JSON.stringify(result.e)));
      else call.resolve(result.v);
    });
  }

  function start(): ChildProcessWithoutNullStreams {
    const child = spawn(jqPath, ['-c', '--unbuffered', buildProgram(sources)], { env: environment, stdio: ['pipe', 'pipe', 'pipe'] });
    programSize = sources.length;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2_000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const batch = inFlight.shift();
      if (batch) answer(batch, line);
    });
    child.on('error', (error) => {
      if (process === child) process = undefined;
      failInFlight(new Error(`jq could not run: ${describeError(error)}`));
    });
    child.on('exit', (code, signal) => {
      if (process === child) process = undefined;
      failInFlight(new Error(`jq stopped (${signal ?? `exit code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`));
    });
    // A write to a jq that just died must fail the evaluation, not the agent.
    child.stdin.on('error', () => undefined);
    return child;
  }

  function flush(): void {
    const batch: Call[] = [];
    const isTooDeep = new Map<unknown, boolean>();
    for (const call of queued) {
      let tooDeep = isTooDeep.get(call.input);
      if (tooDeep === undefined) isTooDeep.set(call.input, (tooDeep = isTooDeepForJq(call.input, JQ_MAX_INPUT_DEPTH)));
      // Refused here rather than sent: jq would stop, failing the other messages' evaluations too.
      if (tooDeep) call.reject(new Error('the input is nested too deeply for jq (jq 1.6 reads 256 levels at most, objects counting twice)'));
      else batch.push(call);
    }
    queued = [];
    if (batch.length === 0) return;
    if (process && programSize !== sources.length) {
      // Expressions compiled after the process started: it must know them too.
      process.kill();
      process = undefined;
    }
    process ??= start();
    // The same input object (one message, many fields) is serialised once.
    const inputs: unknown[] = [];
    const inputIndex = new Map<unknown, number>();
    const calls = batch.map((call) => {
      let index = inputIndex.get(call.input);
      if (index === undefined) {
        index = inputs.push(call.input ?? null) - 1;
        inputIndex.set(call.input, index);
      }
      return [call.expressionId, index];
    });
    inFlight.push(batch);
    process.stdin.write(`${jqLine({ inputs, calls })}\n`);
  }

  function evaluate(expressionId: number, input: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (queued.length === 0) setImmediate(flush);
      queued.push({ expressionId, input, resolve, reject });
    });
  }

  return {
    dialect: 'jq',
    compile(source: string): Expression {
      // jq compiles the expression without running it; its error message names the problem.
      const check = spawnSync(jqPath, ['-n', `if false then (${source}\n) else empty end`], {
        env: environment,
        encoding: 'utf8',
        timeout: SYNTAX_CHECK_TIMEOUT_MS,
      });
      if (check.error) throw new Error(`the jq program cannot run (${describeError(check.error)}); install jq (Debian: apt-get install jq)`);
      if (check.status === JQ_COMPILE_ERROR_STATUS) {
        const message = check.stderr.replace(/\s*jq: \d+ compile errors?\s*$/, '').replace(/^jq: error: /, '').replace(/\s+/g, ' ').trim();
        throw new ExpressionSyntaxError(message || 'jq refused the expression');
      }
      // Anything else (a signal, another status) is jq failing, not the expression.
      if (check.status !== 0) throw new Error(`the jq program failed (${check.signal ?? `exit code ${String(check.status)}`}): ${check.stderr.trim()}`);
      const index = sources.push(source) - 1;
      return { source, evaluate: (input: unknown) => evaluate(index, input) };
    },
    close() {
      process?.kill();
      process = undefined;
    },
  };
}
