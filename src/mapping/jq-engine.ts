/**
 * The jq dialect (SPEC §5), for mapping files written for the official agent. The engine is
 * Debian's jq 1.6 as one long-lived process: no JavaScript jq implementation handles the official
 * default mapping (`@uri`, `gsub`, `env`), while a resident jq evaluates about 12,500 lines/s here
 * with jq's own semantics (TESTING.md). Spawning jq per evaluation would cost ~30 ms each.
 *
 * Every expression compiled is checked at once by jq itself; the first evaluation starts the
 * process with one program holding every expression as a function, and each evaluation is one
 * line in (`{"id": n, "data": input}`) and one line out, in order. An expression's error is caught
 * inside jq and returned as a value, so a line in always gives a line out.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describeError } from '../errors.js';
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

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

const SYNTAX_CHECK_TIMEOUT_MS = 5_000;

/** jq's first output, null when there is none (pyjq's `first`, as the official agent calls it). */
function firstOutput(functionName: string): string {
  return `([limit(1; ${functionName})] | .[0])`;
}

function buildProgram(sources: readonly string[]): string {
  const definitions = sources.map((source, index) => `def __port_agent_expression_${index}: ${source}\n;`).join('\n');
  const dispatch = sources
    .map((_, index) => `${index === 0 ? 'if' : 'elif'} .id == ${index} then (.data | try {v: ${firstOutput(`__port_agent_expression_${index}`)}} catch {e: (. | tostring)})`)
    .join('\n');
  return `${definitions}\n${dispatch}\nelse {e: "unknown expression"} end`;
}

export function createJqCompiler(options: JqEngineOptions): JqCompiler {
  const jqPath = options.jqPath ?? 'jq';
  const environment = { ...options.environment };
  const sources: string[] = [];
  let process: ChildProcessWithoutNullStreams | undefined;
  let programSize = 0;
  let pending: Pending[] = [];

  function failPending(error: Error): void {
    const failed = pending;
    pending = [];
    for (const entry of failed) entry.reject(error);
  }

  function start(): ChildProcessWithoutNullStreams {
    const child = spawn(jqPath, ['-c', '--unbuffered', buildProgram(sources)], { env: environment, stdio: ['pipe', 'pipe', 'pipe'] });
    programSize = sources.length;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2_000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = pending.shift();
      if (!entry) return;
      let answer: { v?: unknown; e?: unknown };
      try {
        answer = JSON.parse(line) as { v?: unknown; e?: unknown };
      } catch (error) {
        entry.reject(new Error(`jq answered something that is not JSON: ${describeError(error)}`));
        return;
      }
      if (answer.e !== undefined) entry.reject(new Error(typeof answer.e === 'string' ? answer.e : JSON.stringify(answer.e)));
      else entry.resolve(answer.v);
    });
    child.on('error', (error) => {
      if (process === child) process = undefined;
      failPending(new Error(`jq could not run: ${describeError(error)}`));
    });
    child.on('exit', (code, signal) => {
      if (process === child) process = undefined;
      failPending(new Error(`jq stopped (${signal ?? `exit code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`));
    });
    // A write to a jq that just died must fail the evaluation, not the agent.
    child.stdin.on('error', () => undefined);
    return child;
  }

  function evaluate(index: number, input: unknown): Promise<unknown> {
    if (process && programSize !== sources.length) {
      // Expressions compiled after the process started: it must know them too.
      process.kill();
      process = undefined;
    }
    process ??= start();
    const child = process;
    return new Promise((resolve, reject) => {
      pending.push({ resolve, reject });
      child.stdin.write(`${JSON.stringify({ id: index, data: input ?? null })}\n`);
    });
  }

  return {
    dialect: 'jq',
    compile(source: string): Expression {
      // They would read the next evaluation's line from the shared process's input.
      if (/(^|[^\w$])inputs?\b/.test(source)) throw new Error('the jq builtins input and inputs are not available in mappings');
      // jq compiles the expression without running it; its error message names the problem.
      const check = spawnSync(jqPath, ['-n', `if false then (${source}\n) else empty end`], {
        env: environment,
        encoding: 'utf8',
        timeout: SYNTAX_CHECK_TIMEOUT_MS,
      });
      if (check.error) throw new Error(`the jq program cannot run (${describeError(check.error)}); install jq (Debian: apt-get install jq)`);
      if (check.status !== 0) {
        const message = check.stderr.replace(/\s*jq: \d+ compile errors?\s*$/, '').replace(/^jq: error: /, '').replace(/\s+/g, ' ').trim();
        throw new Error(message || `jq rejected the expression (exit code ${check.status})`);
      }
      const index = sources.push(source) - 1;
      return { source, evaluate: (input: unknown) => evaluate(index, input) };
    },
    close() {
      process?.kill();
      process = undefined;
    },
  };
}
