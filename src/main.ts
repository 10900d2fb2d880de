#!/usr/bin/env node
/**
 * The `port-agent` command, and the only module that reads the process environment, handles
 * signals and decides the exit code. With no arguments it runs the agent, configured by the
 * environment only (and a .env file in the working directory); agent.ts builds it.
 */
import { createAgent } from './agent.js';
import type { Agent } from './agent.js';
import { CHECK_CONFIG_USAGE, runCheckConfigCommand } from './commands/check-config.js';
import { RENDER_USAGE, runRenderCommand } from './commands/render.js';
import { withEnvFile } from './config/env-file.js';
import { expressionEnvironment, loadConfig } from './config/load.js';
import type { Config, Environment } from './config/load.js';
import { ConfigError, MappingError, describeError } from './errors.js';
import { createLogger } from './log.js';
import type { Logger } from './log.js';
import { AGENT_VERSION } from './shared/package-root.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
/** A configuration mistake: the operator must change something before a restart can help. */
const EXIT_CONFIG = 2;

const USAGE = [
  'usage: port-agent            run the agent (configured by environment variables)',
  '       port-agent --version  print the version',
  RENDER_USAGE.replace(/^usage: /, '       '),
  CHECK_CONFIG_USAGE.replace(/^usage: /, '       '),
].join('\n');

/** Prints one line for a configuration mistake — never a stack trace — and gives the exit code. */
function configFailure(error: ConfigError | MappingError): number {
  process.stderr.write(`port-agent: ${error.message}\n`);
  return EXIT_CONFIG;
}

function isConfigMistake(error: unknown): error is ConfigError | MappingError {
  return error instanceof ConfigError || error instanceof MappingError;
}

/** `port-agent render …`: the dry-run, with the environment as the agent would see it. */
async function runRender(argv: string[]): Promise<number> {
  let env: Environment;
  try {
    env = withEnvFile(process.env, process.cwd());
  } catch (error) {
    if (error instanceof ConfigError) return configFailure(error);
    throw error;
  }
  return runRenderCommand(argv, expressionEnvironment(env), env.PORT_CLIENT_SECRET, env.CONTROL_THE_PAYLOAD_DIALECT, {
    stdout: process.stdout,
    stderr: process.stderr,
  });
}

/** `port-agent check-config`: the agent's start-up checks, without connecting anywhere. */
async function runCheckConfig(argv: string[]): Promise<number> {
  return runCheckConfigCommand(argv, { env: process.env, workingDirectory: process.cwd(), stdout: process.stdout, stderr: process.stderr });
}

/**
 * Stops the agent on SIGTERM/SIGINT (a second signal exits at once) or when polling gives up, and
 * resolves with the exit code.
 */
function stopOnSignals(logger: Logger): { exit: Promise<number>; setAgent(agent: Agent): void; giveUp(): void; fail(code: number): void } {
  let resolveExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  let agent: Agent | undefined;
  let isStopping = false;
  const stopAgent = (onStopped: (error?: unknown) => void) => (agent?.stop() ?? Promise.resolve()).then(() => onStopped(), onStopped);
  const stop = (signal: NodeJS.Signals) => {
    if (isStopping) {
      logger.warn({ signal }, 'second signal: exiting now; unfinished messages will be delivered again');
      resolveExit(EXIT_FAILURE);
      return;
    }
    isStopping = true;
    logger.info({ signal }, 'stopping: finishing in-flight runs, then committing');
    void stopAgent((error) => {
      if (error === undefined) {
        logger.info('stopped');
        resolveExit(EXIT_OK);
        return;
      }
      logger.error({ err: describeError(error) }, 'stopping failed');
      resolveExit(EXIT_FAILURE);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return {
    exit,
    setAgent(built) {
      agent = built;
      // A signal that came while the agent was being built.
      if (isStopping) void built.stop();
    },
    // SPEC §8: polling that failed for POLLING_MAX_FAILURE_DURATION_SECONDS stops the agent with 0, as the reference.
    giveUp() {
      if (isStopping) return;
      isStopping = true;
      logger.info('stopping: polling gave up; finishing in-flight runs');
      void stopAgent(() => {
        logger.info('stopped');
        resolveExit(EXIT_OK);
      });
    },
    fail: (code) => resolveExit(code),
  };
}

/** Runs the agent until a signal stops it; resolves with the process exit code. */
async function runAgent(): Promise<number> {
  const workingDirectory = process.cwd();
  let config: Config;
  let env: Environment;
  try {
    env = withEnvFile(process.env, workingDirectory);
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return configFailure(error);
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  const lifecycle = stopOnSignals(logger);
  // The process lives until it is told to stop, even in the moments no socket or timer is open
  // (between a crashed consumer and its rebuild): exiting then would silently stop consumption.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    let agent: Agent;
    try {
      agent = await createAgent(config, { logger, env, workingDirectory, onGiveUp: () => lifecycle.giveUp() });
    } catch (error) {
      if (isConfigMistake(error)) return configFailure(error);
      throw error;
    }
    lifecycle.setAgent(agent);
    // Errors are logged by the agent; a configuration mistake still gets its one line on stderr.
    agent.start().catch((error: unknown) => lifecycle.fail(isConfigMistake(error) ? configFailure(error) : EXIT_FAILURE));
    const code = await lifecycle.exit;
    await agent.close();
    return code;
  } finally {
    clearInterval(keepAlive);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command === undefined) return runAgent();
  if (command === 'render') return runRender(argv.slice(1));
  if (command === 'check-config') return runCheckConfig(argv.slice(1));
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`port-agent ${AGENT_VERSION}\n`);
    return EXIT_OK;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  process.stderr.write(`port-agent: unknown command "${command}"\n${USAGE}\n`);
  return EXIT_CONFIG;
}

process.on('uncaughtException', (error) => {
  process.stderr.write(`port-agent: unexpected error: ${error.stack ?? String(error)}\n`);
  process.exit(EXIT_FAILURE);
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`port-agent: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(EXIT_FAILURE);
  },
);
