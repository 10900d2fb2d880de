import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { killOnExit } from './child-processes.js';

/** One stdout line of the agent: a parsed pino JSON object, or `{ raw }` for anything else. */
export type AgentLogLine = Record<string, unknown>;

export interface AgentExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The built agent (`dist/src/main.js`) running as a child process. */
export interface AgentProcess {
  pid: number | undefined;
  /** Every stdout line so far, in order. */
  logs: AgentLogLine[];
  /** The same lines as written, e.g. to see a key written twice (parsing keeps only the last). */
  rawLogs: string[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /**
   * Resolves with the first line (already received or still to come) matching `predicate`;
   * rejects on timeout or when the agent's output ends without one.
   */
  waitForLog(predicate: (line: AgentLogLine) => boolean, timeoutMs?: number): Promise<AgentLogLine>;
  /** Settles when the process has exited. Unbounded: a test waits with {@link exitWithin}. */
  exited: Promise<AgentExit>;
  /**
   * Resolves with the exit if the process exits within `timeoutMs`; otherwise stops it and rejects
   * with the last lines and the stderr tail, so an agent that keeps running fails the test instead
   * of hanging the suite.
   */
  exitWithin(timeoutMs: number): Promise<AgentExit>;
  /** Sends a signal (default SIGTERM). */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL once `timeoutMs` has passed without an exit. */
  stop(timeoutMs?: number): Promise<AgentExit>;
}

export interface AgentProcessOptions {
  /** Working directory; default a fresh empty temporary directory (no `.env`, no mapping file). */
  cwd?: string;
  /** Extra command-line arguments for the CLI. */
  args?: string[];
  /** The script to run instead of the built CLI (this helper's own tests, the production layout's CLI). */
  script?: string;
  /** Node.js options before the script. */
  nodeArgs?: string[];
  /** Run `script` itself, its `#!` line choosing the interpreter (as the image's `port-agent` command), instead of `node script`. */
  asExecutable?: boolean;
  /** Run as this user and group (the caller must be root): a non-root agent, as in the image. */
  runAs?: { uid: number; gid: number };
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI_PATH = join(REPO_ROOT, 'dist', 'src', 'main.js');
const DEFAULT_WAIT_TIMEOUT_MS = 15_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
// After the exit, stdout may still hold lines; give it this long to drain before failing waiters.
const OUTPUT_DRAIN_GRACE_MS = 1_000;
const STDERR_TAIL_CHARS = 2_000;
const ECHO_ENV = 'TEST_AGENT_LOGS';

function parseLine(line: string): AgentLogLine {
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as AgentLogLine;
  } catch {
    // not JSON: kept raw below
  }
  return { raw: line };
}

/**
 * Starts the built agent with only PATH, HOME and `env` in its environment, so a test sees exactly
 * the configuration it gives. Run `npm run build` first. `TEST_AGENT_LOGS=1` echoes its output to
 * the test's stderr.
 */
export function startAgent(env: Record<string, string>, options: AgentProcessOptions = {}): AgentProcess {
  const script = options.script ?? CLI_PATH;
  if (!existsSync(script)) {
    throw new Error(script === CLI_PATH ? `${CLI_PATH} not found: run \`npm run build\` first` : `${script} not found`);
  }
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'port-agent-test-'));
  const temporaryCwd = options.cwd === undefined ? cwd : undefined;
  const baseEnv: Record<string, string> = {};
  for (const name of ['PATH', 'HOME']) {
    const value = process.env[name];
    if (value !== undefined) baseEnv[name] = value;
  }

  const [command, args] = options.asExecutable
    ? [script, options.args ?? []]
    : [process.execPath, [...(options.nodeArgs ?? []), script, ...(options.args ?? [])]];
  const child = spawn(command, args, {
    cwd,
    env: { ...baseEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options.runAs,
  });
  killOnExit(child);
  const isEchoing = process.env[ECHO_ENV] === '1';
  const echo = (text: string): void => {
    if (isEchoing) process.stderr.write(`[agent ${String(child.pid)}] ${text}\n`);
  };

  const logs: AgentLogLine[] = [];
  const rawLogs: string[] = [];
  let stderrText = '';
  let isOutputDone = false;
  const waiters = new Set<{ check: () => void; fail: () => void }>();

  createInterface({ input: child.stdout, crlfDelay: Infinity })
    .on('line', (line) => {
      echo(line);
      rawLogs.push(line);
      logs.push(parseLine(line));
      for (const waiter of waiters) waiter.check();
    })
    .on('close', () => {
      isOutputDone = true;
      for (const waiter of waiters) waiter.fail();
    });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderrText += chunk;
    echo(chunk.trimEnd());
  });

  let exit: AgentExit | undefined;
  const exited = new Promise<AgentExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
      if (temporaryCwd !== undefined) rmSync(temporaryCwd, { recursive: true, force: true });
      // A grandchild holding stdout open must not keep waiters hanging.
      setTimeout(() => {
        isOutputDone = true;
        for (const waiter of waiters) waiter.fail();
      }, OUTPUT_DRAIN_GRACE_MS).unref();
    });
    child.once('error', (error) => {
      stderrText += `spawn error: ${error.message}\n`;
      if (child.pid === undefined) {
        exit = { code: null, signal: null };
        resolve(exit);
      }
    });
  });

  const waitForLog = (predicate: (line: AgentLogLine) => boolean, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<AgentLogLine> =>
    new Promise((resolve, reject) => {
      let scanned = 0;
      const describe = (reason: string): Error =>
        new Error(
          `${reason} waiting for an agent log line matching ${predicate.toString()}\n` +
            `exit: ${exit ? JSON.stringify(exit) : 'still running'}\n` +
            `last lines: ${logs.slice(-5).map((line) => JSON.stringify(line)).join('\n')}\n` +
            `stderr tail: ${stderrText.slice(-STDERR_TAIL_CHARS)}`,
        );
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      const waiter = {
        check: (): void => {
          for (; scanned < logs.length; scanned += 1) {
            const line = logs[scanned];
            if (line !== undefined && predicate(line)) {
              finish();
              resolve(line);
              return;
            }
          }
        },
        fail: (): void => {
          waiter.check();
          if (!waiters.has(waiter)) return;
          finish();
          reject(describe('Agent output ended'));
        },
      };
      const timer = setTimeout(() => {
        finish();
        reject(describe(`Timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(waiter);
      if (isOutputDone) waiter.fail();
      else waiter.check();
    });

  const kill = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    if (exit === undefined) child.kill(signal);
  };

  /** The exit if it comes within `timeoutMs`, else undefined. */
  const exitOrTimeout = async (timeoutMs: number): Promise<AgentExit | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const result = await Promise.race([exited, deadline]);
    clearTimeout(timer);
    return result;
  };

  const stop = async (timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<AgentExit> => {
    if (exit !== undefined) return exit;
    kill('SIGTERM');
    const result = await exitOrTimeout(timeoutMs);
    if (result !== undefined) return result;
    kill('SIGKILL');
    return exited;
  };

  const exitWithin = async (timeoutMs: number): Promise<AgentExit> => {
    const result = await exitOrTimeout(timeoutMs);
    if (result !== undefined) return result;
    const stopped = await stop();
    throw new Error(
      `The agent did not exit within ${timeoutMs} ms; stopped it (${JSON.stringify(stopped)})\n` +
        `last lines: ${rawLogs.slice(-5).join('\n')}\n` +
        `stderr tail: ${stderrText.slice(-STDERR_TAIL_CHARS)}`,
    );
  };

  return {
    pid: child.pid,
    logs,
    rawLogs,
    stderr: () => stderrText,
    waitForLog,
    exited,
    exitWithin,
    kill,
    stop,
  };
}
