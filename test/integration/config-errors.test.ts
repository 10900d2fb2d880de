/**
 * SPEC §1: a missing or invalid configuration value stops the built agent at start with one line
 * naming the variable, exit code 2, and never a stack trace.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { startAgent } from '../support/agent-process.js';

const VALID = {
  PORT_ORG_ID: 'org_cfg',
  PORT_CLIENT_ID: 'client-id',
  PORT_CLIENT_SECRET: 'a-client-secret-that-must-never-be-printed',
  USING_LOCAL_PORT_INSTANCE: 'true',
  KAFKA_CONSUMER_BOOTSTRAP_SERVERS: '127.0.0.1:1',
  PORT_API_BASE_URL: 'http://127.0.0.1:1',
  HEALTH_PORT: '0',
};

const EXIT_WAIT_MS = 20_000;

async function expectConfigError(env: Record<string, string>, expected: RegExp, cwd?: string): Promise<void> {
  // An agent that starts instead of exiting fails this test rather than hanging the suite.
  const agent = startAgent(env, cwd === undefined ? {} : { cwd });
  const exit = await agent.exitWithin(EXIT_WAIT_MS);
  const stderr = agent.stderr();
  assert.equal(exit.code, 2, `exit code 2 (stderr: ${stderr})`);
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${stderr}`);
  assert.match(lines[0] ?? '', expected);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  assert.ok(!stderr.includes(VALID.PORT_CLIENT_SECRET), 'the secret is not printed');
}

describe('configuration errors at start', () => {
  for (const variable of ['PORT_ORG_ID', 'PORT_CLIENT_ID', 'PORT_CLIENT_SECRET']) {
    it(`exits 2 naming ${variable} when it is missing`, async () => {
      const env: Record<string, string> = { ...VALID };
      delete env[variable];
      await expectConfigError(env, new RegExp(`^port-agent: Invalid configuration: ${variable} is required`));
    });
  }

  it('exits 2 for a local instance without bootstrap servers', async () => {
    const env: Record<string, string> = { ...VALID };
    delete env.KAFKA_CONSUMER_BOOTSTRAP_SERVERS;
    await expectConfigError(env, /KAFKA_CONSUMER_BOOTSTRAP_SERVERS is required when USING_LOCAL_PORT_INSTANCE=true/);
  });

  const invalid: [string, string, RegExp][] = [
    ['WEBHOOK_INVOKER_TIMEOUT', 'ten', /WEBHOOK_INVOKER_TIMEOUT must be a number greater than 0 \(got "ten"\)/],
    ['WEBHOOK_VERIFY_SSL', 'sometimes', /WEBHOOK_VERIFY_SSL must be one of true\/false/],
    ['STREAMER_NAME', 'CARRIER_PIGEON', /STREAMER_NAME must be one of kafka, polling/],
    ['KAFKA_CONSUMER_AUTO_OFFSET_RESET', 'middle', /KAFKA_CONSUMER_AUTO_OFFSET_RESET must be one of/],
    ['KAFKA_CONSUMER_SESSION_TIMEOUT_MS', '-5', /KAFKA_CONSUMER_SESSION_TIMEOUT_MS must be a whole number/],
    ['LOG_LEVEL', 'CHATTY', /LOG_LEVEL must be one of/],
    ['PORT_API_BASE_URL', 'not a url', /PORT_API_BASE_URL must be an http:\/\/ or https:\/\/ URL/],
    ['CONTROL_THE_PAYLOAD_CONFIG_PATH', '/nonexistent/mapping.json', /CONTROL_THE_PAYLOAD_CONFIG_PATH cannot read the payload mapping file \/nonexistent\/mapping.json \(ENOENT\)/],
  ];
  for (const [variable, value, expected] of invalid) {
    it(`exits 2 naming ${variable} for ${JSON.stringify(value)}`, async () => {
      await expectConfigError({ ...VALID, [variable]: value }, expected);
    });
  }

  it('exits 2 naming the mapping index, field and expression of a mapping that does not compile', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'mapping-'));
    const path = join(directory, 'mapping.json');
    writeFileSync(path, JSON.stringify([{ enabled: true, url: '"http://x" &' }]));
    await expectConfigError({ ...VALID, CONTROL_THE_PAYLOAD_CONFIG_PATH: path }, /Mapping 0, field "url": the jsonata expression "\\"http:\/\/x\\" &" does not compile/);
  });

  it('exits 2 when a mapping decrypts fields and the client secret is too short for a key', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'mapping-'));
    const path = join(directory, 'mapping.json');
    writeFileSync(path, JSON.stringify([{ enabled: true, fieldsToDecryptPaths: ['payload.properties.password'] }]));
    await expectConfigError(
      { ...VALID, PORT_CLIENT_SECRET: 'short-secret', CONTROL_THE_PAYLOAD_CONFIG_PATH: path },
      /PORT_CLIENT_SECRET is shorter than the 32 bytes of an AES-256 key, and mapping 0 asks to decrypt fields/,
    );
  });

  it('starts with CONTROL_THE_PAYLOAD_DIALECT=jq and a jq expression that does not compile, naming it in a warn line', async () => {
    // The official agent runs such a file (the expression yields null); check-config refuses it.
    const directory = mkdtempSync(join(tmpdir(), 'mapping-'));
    const path = join(directory, 'mapping.json');
    writeFileSync(path, JSON.stringify([{ enabled: true, body: { a: '.payload | map(' } }]));
    const agent = startAgent({ ...VALID, CONTROL_THE_PAYLOAD_DIALECT: 'jq', CONTROL_THE_PAYLOAD_CONFIG_PATH: path });
    try {
      const warning = await agent.waitForLog((line) => line.level === 'warn' && line.field === 'body.a');
      assert.equal(warning.mappingIndex, 0);
      assert.equal(warning.expression, '.payload | map(');
      assert.match(String(warning.msg), /^Mapping 0, field "body\.a": the jq expression "\.payload \| map\(" does not compile: syntax error/);
      await agent.waitForLog((line) => line.msg === 'health server listening');
    } finally {
      const exit = await agent.stop();
      assert.equal(exit.code, 0, `a clean stop (stderr: ${agent.stderr()})`);
    }
  });

  it('exits 2 naming an unknown mapping field', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'mapping-'));
    const path = join(directory, 'mapping.json');
    writeFileSync(path, JSON.stringify([{ enabled: true }, { enabled: true, reprot: {} }]));
    await expectConfigError({ ...VALID, CONTROL_THE_PAYLOAD_CONFIG_PATH: path }, /Mapping 1, field "reprot": unknown field/);
  });

  it('exits 2 naming HEALTH_PORT when its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      await expectConfigError({ ...VALID, HEALTH_PORT: String(port) }, new RegExp(`^port-agent: Invalid configuration: HEALTH_PORT ${port} cannot be used: .*EADDRINUSE`));
    } finally {
      taken.close();
    }
  });

  it('reads variables from a .env file in the working directory, the real environment winning', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'dotenv-'));
    writeFileSync(join(directory, '.env'), 'WEBHOOK_INVOKER_TIMEOUT=from-dotenv\nLOG_LEVEL=loud\n');
    // LOG_LEVEL from the file is overridden by a valid real value, so only the timeout is reported.
    await expectConfigError({ ...VALID, LOG_LEVEL: 'INFO' }, /^port-agent: Invalid configuration: WEBHOOK_INVOKER_TIMEOUT must be a number greater than 0 \(got "from-dotenv"\)$/, directory);
  });
});
