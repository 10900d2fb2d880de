/**
 * The container image's layout (Dockerfile, SPEC §10) without a Docker engine: the parts the
 * final stage copies to /app — the compiled output, config/, package.json and the lock file, and
 * `npm ci --omit=dev` — are put in a fresh folder, the tree is made read-only, and the agent runs
 * from it with that folder as its working directory, as a user that owns nothing there (as
 * `USER 1000` in the image, `nobody` here), against the real broker and the Port stand-in.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { Broker } from '../support/broker.js';
import { startAgent } from '../support/agent-process.js';
import type { AgentLogLine, AgentProcess } from '../support/agent-process.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, isConsuming, startRealParts } from '../support/harness.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCKERFILE = join(REPO_ROOT, 'Dockerfile');
/** What the final stage copies from the build context and the build stage; node_modules comes from `npm ci --omit=dev`. */
const COPIED_FROM_REPOSITORY = ['package.json', 'package-lock.json', 'config', 'dist/src'] as const;
const PRODUCTION_MODULES = 'node_modules';
const IMAGE_WORKDIR = '/app';
const CLI = join('dist', 'src', 'main.js');
/** The image's command, on its PATH. */
const COMMAND = 'port-agent';
/** Where the official chart mounts the payload mapping, relative to the working directory. */
const MOUNTED_MAPPING = 'control_the_payload_config.json';
/** `nobody`: owns nothing in the layout, like the image's user owns nothing in /app. */
const UNPRIVILEGED_ID = 65534;
const NPM_CI_TIMEOUT_MS = 240_000;
const JOIN_TIMEOUT_MS = 30_000;
// The agent's shutdown grace is 25 s by default; with no run in hand it stops in about a second.
const STOP_TIMEOUT_MS = 30_000;
// Tries to write each path given; prints the error code (or "written") for each, one per line.
const WRITE_PROBE = "for (const path of process.argv.slice(1)) { try { require('node:fs').writeFileSync(path, 'x'); console.log('written'); } catch (error) { console.log(error.code); } }";

// Root ignores file permissions: only another user shows that the tree is read-only. A non-root
// runner is already such a user once the tree has no write bits.
const runAs = process.getuid?.() === 0 ? { uid: UNPRIVILEGED_ID, gid: UNPRIVILEGED_ID } : {};

/** The final stage of the Dockerfile as instructions (continuation lines joined, comments dropped). */
function finalStageInstructions(): string[] {
  const instructions = readFileSync(DOCKERFILE, 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
  const lastFrom = instructions.findLastIndex((line) => /^FROM\s/i.test(line));
  assert.ok(lastFrom >= 0, 'the Dockerfile has a FROM');
  return instructions.slice(lastFrom);
}

/** Paths (relative to the working directory) that the final stage's COPY instructions create. */
function copiedPaths(instructions: string[]): string[] {
  const paths: string[] = [];
  for (const instruction of instructions.filter((line) => /^COPY\s/i.test(line))) {
    const words = instruction.split(/\s+/).slice(1).filter((word) => !word.startsWith('--'));
    const destination = words.pop() ?? '';
    if (destination.endsWith('/')) paths.push(...words.map((source) => source.split('/').at(-1) ?? source));
    else paths.push(destination.replace(/^\.\//, ''));
  }
  return paths.sort();
}

/** The image's ENTRYPOINT, in exec form. */
function entrypoint(instructions: string[]): string[] {
  const line = instructions.find((instruction) => /^ENTRYPOINT\s/i.test(instruction));
  const words: unknown = JSON.parse(line?.replace(/^ENTRYPOINT\s+/i, '') ?? 'null');
  assert.ok(Array.isArray(words) && words.every((word) => typeof word === 'string') && words.length >= 1, `ENTRYPOINT in exec form (actual: ${String(line)})`);
  return words as string[];
}

/** The commands the final stage puts on the PATH: link → target, from its `ln -s` lines. */
function commandLinks(instructions: string[]): Record<string, string> {
  const links: Record<string, string> = {};
  for (const instruction of instructions.filter((line) => /^RUN\s/i.test(line))) {
    for (const [, target = '', link = ''] of instruction.matchAll(/\bln -s (\S+) (\S+)/g)) links[link] = target;
  }
  return links;
}

/** The final stage's ENV instructions (`ENV NAME=value …`): the environment every container starts with. */
function imageEnvironment(instructions: string[]): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const instruction of instructions.filter((line) => /^ENV\s/i.test(line))) {
    for (const pair of instruction.replace(/^ENV\s+/i, '').split(/\s+/)) {
      const [name = '', ...value] = pair.split('=');
      assert.ok(name.length > 0 && value.length > 0, `ENV in NAME=value form (actual: ${instruction})`);
      environment[name] = value.join('=').replace(/^"(.*)"$/, '$1');
    }
  }
  return environment;
}

function makeTreeReadOnly(path: string): void {
  const result = spawnSync('chmod', ['-R', 'a-w', path], { encoding: 'utf8' });
  assert.equal(result.status, 0, `chmod -R a-w ${path}: ${result.stderr}`);
}

/** What the user the agent runs as gets when writing each path: an error code, or "written". */
function writeAttempts(paths: string[]): string[] {
  const result = spawnSync(process.execPath, ['-e', WRITE_PROBE, ...paths], { ...runAs, encoding: 'utf8' });
  assert.equal(result.status, 0, `write probe: ${result.stderr}`);
  return result.stdout.trim().split('\n');
}

/** The container's environment: PATH, a home it cannot write, /tmp, the image's ENV and the configuration. */
function containerEnvironment(home: string, image: Record<string, string>, configuration: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: home, TMPDIR: '/tmp', ...image, ...configuration };
}

/**
 * Starts the agent as the image's entrypoint does — `port-agent`, the compiled CLI run through its
 * `#!` line — with the layout folder in the place of /app.
 */
function startFromLayout(layout: string, env: Record<string, string>): AgentProcess {
  return startAgent(env, { cwd: layout, script: join(layout, CLI), asExecutable: true, ...(runAs.uid === undefined ? {} : { runAs: { uid: runAs.uid, gid: runAs.gid } }) });
}

function isMappingLoaded(line: AgentLogLine): boolean {
  return line.msg === 'payload mapping loaded';
}

describe('the production layout of the container image', () => {
  let scratch: string | undefined;
  let layout: string;
  let layoutWithMountedMapping: string;
  let jqMappingPath: string;
  let home: string;
  /** The image's /usr/local/bin: `port-agent`, linked to the layout's CLI. */
  let bin: string;
  let broker: Broker | undefined;
  let port: PortStandIn | undefined;
  let target: WebhookTarget | undefined;
  let imageEnv: Record<string, string> = {};
  const agents: AgentProcess[] = [];

  const start = (folder: string, configuration: Record<string, string>): AgentProcess => {
    const agent = startFromLayout(folder, containerEnvironment(home, imageEnv, configuration));
    agents.push(agent);
    return agent;
  };

  before(async () => {
    assert.ok(existsSync(join(REPO_ROOT, CLI)), `${join(REPO_ROOT, CLI)} not found: run \`npm run build\` first (the layout holds the compiled output)`);
    const instructions = finalStageInstructions();
    imageEnv = imageEnvironment(instructions);
    scratch = mkdtempSync(join(tmpdir(), 'port-agent-production-layout-'));
    // mkdtemp makes the folder private to its creator; the agent's user must reach what is inside.
    chmodSync(scratch, 0o755);
    layout = join(scratch, 'app');
    mkdirSync(layout);
    for (const part of COPIED_FROM_REPOSITORY) cpSync(join(REPO_ROOT, part), join(layout, part), { recursive: true });
    // The final stage's `RUN chmod 0755 …main.js && ln -s …main.js /usr/local/bin/port-agent`, with a bin folder for /usr/local/bin.
    chmodSync(join(layout, CLI), 0o755);
    bin = join(scratch, 'bin');
    mkdirSync(bin);
    symlinkSync(join(layout, CLI), join(bin, COMMAND));
    // npm run by `npm test` passes its own settings down as npm_* variables; this install is the image's, not the repository's.
    const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
    await promisify(execFile)('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      cwd: layout,
      env: npmEnv,
      timeout: NPM_CI_TIMEOUT_MS,
    }).catch((error: unknown) => {
      const { stderr } = error as { stderr?: string };
      throw new Error(`npm ci --omit=dev in the layout failed: ${stderr ?? String(error)}`);
    });

    // The same image with the chart's mapping volume, which is in place before the agent starts.
    layoutWithMountedMapping = join(scratch, 'app-with-mounted-mapping');
    cpSync(layout, layoutWithMountedMapping, { recursive: true, verbatimSymlinks: true });
    writeFileSync(
      join(layoutWithMountedMapping, MOUNTED_MAPPING),
      JSON.stringify([{ enabled: "payload.action.identifier = 'deploy_service'", body: { mappedBy: "'the mounted mapping'", runId: 'context.runId' } }]),
    );
    // A jq mapping mounted elsewhere and named by CONTROL_THE_PAYLOAD_CONFIG_PATH.
    jqMappingPath = join(scratch, 'mappings', 'jq-mapping.json');
    mkdirSync(join(scratch, 'mappings'));
    writeFileSync(jqMappingPath, JSON.stringify([{ enabled: '.payload.action.identifier == "deploy_service"', body: { mappedBy: '"jq"', runId: '.context.runId', region: 'env.DEPLOY_REGION' } }]));
    // The image's home (/home/node) is on the read-only root filesystem too.
    home = join(scratch, 'home');
    mkdirSync(home);
    makeTreeReadOnly(scratch);

    ({ broker, port, target } = await startRealParts());
  });

  after(async () => {
    await Promise.all(agents.map((agent) => agent.stop(STOP_TIMEOUT_MS)));
    await closeRealParts({ target, port, broker });
    if (scratch !== undefined) {
      spawnSync('chmod', ['-R', 'u+w', scratch]);
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("is what the Dockerfile's final stage holds, started the way its entrypoint starts it", () => {
    const instructions = finalStageInstructions();
    assert.deepEqual(copiedPaths(instructions), [...COPIED_FROM_REPOSITORY, PRODUCTION_MODULES].sort());
    assert.ok(instructions.some((line) => /--from=prod-deps\s+\S*\/node_modules\s/.test(line)), 'node_modules comes from the production-dependencies stage');
    assert.ok(instructions.includes(`WORKDIR ${IMAGE_WORKDIR}`), `working directory ${IMAGE_WORKDIR}, where the chart mounts the mapping`);
    assert.deepEqual(entrypoint(instructions), [COMMAND], 'the entrypoint is the port-agent command');
    assert.equal(commandLinks(instructions)[`/usr/local/bin/${COMMAND}`], `${IMAGE_WORKDIR}/${CLI}`, 'port-agent on the PATH is the compiled CLI');
    assert.ok(instructions.some((line) => line.includes(`chmod 0755 ${IMAGE_WORKDIR}/${CLI}`)), 'the CLI is executable');
    assert.match(readFileSync(join(REPO_ROOT, CLI), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'the CLI names its interpreter');
    assert.equal(imageEnvironment(instructions).NODE_ENV, 'production');
    const user = instructions.find((line) => line.startsWith('USER '))?.slice('USER '.length).split(':')[0];
    assert.ok(user !== undefined && user !== 'root' && /^[1-9]\d*$/.test(user), `a numeric non-root user, so Kubernetes' runAsNonRoot can check it (actual: ${String(user)})`);
    assert.ok(instructions.some((line) => /apt-get install [^;&]*\bjq\b/.test(line)), 'jq, the engine of the jq dialect, is installed');
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.ok(instructions.includes(`ARG VERSION=${version}`), `the image's version label defaults to package.json's version (${version})`);
  });

  it('holds the production dependencies and none of the development ones', () => {
    const lock = JSON.parse(readFileSync(join(layout, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const manifest = JSON.parse(readFileSync(join(layout, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies)) assert.ok(existsSync(join(layout, PRODUCTION_MODULES, name)), `${name} is installed`);
    const devOnly = Object.entries(lock.packages).filter(([path, entry]) => path.length > 0 && entry.dev === true).map(([path]) => path);
    assert.ok(devOnly.includes(`${PRODUCTION_MODULES}/typescript`) && devOnly.includes(`${PRODUCTION_MODULES}/tsx`), 'the lock file marks the development packages');
    assert.deepEqual(devOnly.filter((path) => existsSync(join(layout, path))), [], 'no development package in the layout');
  });

  it('cannot be written by the user the agent runs as, while /tmp can', () => {
    const inTree = [
      join(layout, 'written-by-the-agent'),
      join(layout, 'dist', 'src', 'written-by-the-agent'),
      join(layout, PRODUCTION_MODULES, 'written-by-the-agent'),
      join(layoutWithMountedMapping, MOUNTED_MAPPING),
      join(home, 'written-by-the-agent'),
    ];
    const inTmp = join('/tmp', `port-agent-write-probe-${process.pid}`);
    try {
      assert.deepEqual(writeAttempts([...inTree, inTmp]), [...inTree.map(() => 'EACCES'), 'written']);
    } finally {
      rmSync(inTmp, { force: true });
    }
  });

  it('exits 2 with one line naming PORT_ORG_ID when it is missing', async () => {
    assert.ok(broker && port);
    const configuration = agentSetup(broker, port).env;
    delete configuration.PORT_ORG_ID;
    const agent = start(layout, configuration);
    const exit = await agent.exitWithin(20_000);
    assert.equal(exit.code, 2, `exit code 2 (stderr: ${agent.stderr()})`);
    const lines = agent.stderr().trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${agent.stderr()}`);
    assert.match(lines[0] ?? '', /^port-agent: Invalid configuration: PORT_ORG_ID is required/);
  });

  it('has port-agent on the PATH, for --version and check-config in a running container', () => {
    assert.ok(broker && port);
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const environment = containerEnvironment(home, imageEnv, { ...agentSetup(broker, port).env, PATH: `${bin}:${process.env.PATH ?? ''}` });
    const run = (...args: string[]) => spawnSync(COMMAND, args, { cwd: layout, env: environment, encoding: 'utf8', ...runAs });
    const printed = run('--version');
    assert.equal(printed.status, 0, printed.stderr);
    assert.equal(printed.stdout, `port-agent ${version}\n`);
    assert.equal(printed.stderr, '', 'nothing on stderr: NODE_OPTIONS of the image is accepted');
    const checked = run('check-config');
    assert.equal(checked.status, 0, checked.stderr);
    assert.equal((JSON.parse(checked.stdout) as { valid: boolean }).valid, true);
  });

  it('loads the built-in mapping from config/, joins the consumer group, serves health and metrics, and exits 0 on SIGTERM', async () => {
    assert.ok(broker && port);
    const agent = start(layout, agentSetup(broker, port).env);
    const loaded = await agent.waitForLog(isMappingLoaded);
    assert.equal(loaded.builtIn, true);
    assert.equal(loaded.path, join(layout, 'config', 'default-mapping.json'));
    assert.equal(loaded.dialect, 'jsonata');
    await agent.waitForLog(isConsuming, JOIN_TIMEOUT_MS);
    const health = await agent.waitForLog((line) => line.msg === 'health server listening');
    const healthUrl = `http://127.0.0.1:${String(health.port)}`;
    await waitFor(async () => (await fetch(`${healthUrl}/readyz`)).status === 200, { timeoutMs: JOIN_TIMEOUT_MS, description: 'GET /readyz answering 200' });
    for (const path of ['/healthz', '/metrics']) {
      const response = await fetch(`${healthUrl}${path}`);
      assert.equal(response.status, 200, `GET ${path}: ${await response.text()}`);
    }
    if (runAs.uid !== undefined) {
      const status = readFileSync(`/proc/${String(agent.pid)}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\t${runAs.uid}\\t`, 'm'), 'the agent runs as the unprivileged user');
    }
    assert.deepEqual(await agent.stop(STOP_TIMEOUT_MS), { code: 0, signal: null }, `stderr: ${agent.stderr()}`);
    assert.equal(agent.stderr(), '', 'nothing on stderr: no warning from Node.js or a dependency');
  });

  it('reads the mapping the chart mounts in the working directory and delivers a run with it', async () => {
    assert.ok(broker && port && target);
    const setup = agentSetup(broker, port);
    const url = `${target.url}/mounted-mapping`;
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_mounted', url }), port.clientSecret) }]);
    const agent = start(layoutWithMountedMapping, setup.env);
    const loaded = await agent.waitForLog(isMappingLoaded);
    assert.equal(loaded.builtIn, false);
    assert.equal(loaded.path, join(layoutWithMountedMapping, MOUNTED_MAPPING));
    const standIn = port;
    await waitFor(() => standIn.actionRunLogs('r_mounted').includes(RUN_LOG.actionFinished), { timeoutMs: JOIN_TIMEOUT_MS, description: 'the run delivered and reported' });
    const request = target.requests.find((entry) => entry.path === '/mounted-mapping');
    assert.deepEqual(request?.json, { mappedBy: 'the mounted mapping', runId: 'r_mounted' });
    assert.equal(request?.signatureValid, true);
    assert.deepEqual(await agent.stop(STOP_TIMEOUT_MS), { code: 0, signal: null }, `stderr: ${agent.stderr()}`);
  });

  it('runs the jq dialect with the jq on the PATH, as the user the agent runs as', async () => {
    // npm test installs jq (scripts/ensure-tools.mjs), as the image does.
    assert.equal(spawnSync('jq', ['--version']).status, 0, 'jq is not installed (apt-get install jq)');
    assert.ok(broker && port && target);
    const setup = agentSetup(broker, port, { CONTROL_THE_PAYLOAD_DIALECT: 'jq', CONTROL_THE_PAYLOAD_CONFIG_PATH: jqMappingPath, DEPLOY_REGION: 'eu-west-1' });
    const url = `${target.url}/jq-mapping`;
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_jq', url }), port.clientSecret) }]);
    const agent = start(layout, setup.env);
    const loaded = await agent.waitForLog(isMappingLoaded);
    assert.equal(loaded.dialect, 'jq');
    assert.equal(loaded.path, jqMappingPath);
    await agent.waitForLog(isConsuming, JOIN_TIMEOUT_MS);
    const standIn = port;
    await waitFor(() => standIn.actionRunLogs('r_jq').includes(RUN_LOG.actionFinished), { timeoutMs: JOIN_TIMEOUT_MS, description: 'the jq-mapped run delivered and reported' });
    const request = target.requests.find((entry) => entry.path === '/jq-mapping');
    assert.deepEqual(request?.json, { mappedBy: 'jq', runId: 'r_jq', region: 'eu-west-1' });
    assert.deepEqual(await agent.stop(STOP_TIMEOUT_MS), { code: 0, signal: null }, `stderr: ${agent.stderr()}`);
  });
});
