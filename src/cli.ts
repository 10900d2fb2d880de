#!/usr/bin/env node
/**
 * The `port-agent` command. With no arguments it runs the agent, configured by the environment
 * only (and a .env file in the working directory), which main.ts reads.
 */
import { CHECK_CONFIG_USAGE } from './commands/check-config.js';
import { RENDER_USAGE } from './commands/render.js';
import { EXIT_CONFIG, EXIT_FAILURE, runAgent, runCheckConfig, runRender } from './main.js';
import { AGENT_VERSION } from './shared/package-root.js';

const USAGE = [
  'usage: port-agent            run the agent (configured by environment variables)',
  '       port-agent --version  print the version',
  RENDER_USAGE.replace(/^usage: /, '       '),
  CHECK_CONFIG_USAGE.replace(/^usage: /, '       '),
].join('\n');

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command === undefined) return runAgent();
  if (command === 'render') return runRender(argv.slice(1));
  if (command === 'check-config') return runCheckConfig(argv.slice(1));
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`port-agent ${AGENT_VERSION}\n`);
    return 0;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
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
