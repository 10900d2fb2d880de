/**
 * `port-agent check-config`: validates the environment (and a .env file) and the payload mapping
 * file exactly as the agent does at start, and prints the effective configuration as JSON with
 * every secret masked. Nothing is contacted: no Kafka, no Port API.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import convict from 'convict';
import { withEnvFile } from '../config/env-file.js';
import { SECRET_VARIABLES, SENSITIVE_KEYS, VARIABLE_BY_KEY, expressionEnvironment, loadConfig } from '../config/load.js';
import type { Environment } from '../config/load.js';
import { CONFIG_SCHEMA } from '../config/schema.js';
import { ConfigError, MappingError, describeError } from '../errors.js';
import { isPlainObject } from '../shared/json-shape.js';
import { createCompiler } from '../mapping/dialects.js';
import { loadMappings } from '../mapping/load.js';
import { decryptionKey } from '../message/decrypt.js';
import { startupChecks } from '../config/startup-checks.js';
import { describeSkipped, trustSummary } from '../trust/trust-report.js';

export const CHECK_CONFIG_USAGE =
  'usage: port-agent check-config\n' +
  '  validates the environment (and a .env file in the working directory) and the payload mapping file as the agent does\n' +
  '  at start, and prints the effective configuration as JSON with secrets masked; exit 0 when valid, 2 when not';

/** What a secret shows instead of its value: whether it is set, never any part of it. */
export const SECRET_SET = '[set]';
export const SECRET_NOT_SET = '[not set]';

/** Where a variable's value came from. */
export type ValueSource = 'environment' | '.env' | 'default';

export interface VariableReport {
  /** The value as the agent reads it (after parsing), or {@link SECRET_SET}/{@link SECRET_NOT_SET}. */
  value: unknown;
  from: ValueSource;
}

/** The command's answer, printed as JSON. */
export interface CheckConfigOutput {
  valid: true;
  /** Every variable the agent reads, by name, in the schema's order. */
  variables: Record<string, VariableReport>;
  /** Values the agent derives from several variables. */
  effective: {
    orgId: string;
    groupId: string;
    runsTopic: string;
    changeLogTopic: string;
    /** The brokers of a local instance, or where the agent gets them. */
    kafkaBrokers: string[] | typeof BROKERS_FROM_PORT | typeof NO_KAFKA;
    portApiBaseUrl: string;
  };
  mapping: {
    /** Absolute path of the file used. */
    path: string;
    builtIn: boolean;
    dialect: string;
    /** Why this dialect: CONTROL_THE_PAYLOAD_DIALECT, or what detection found. */
    dialectReason: string;
    mappings: number;
    /** Indexes of the mappings that decrypt fields (fieldsToDecryptPaths). */
    decrypting: number[];
  };
  /** The .env file read, if any. */
  envFile: string | null;
  /** Node.js's bundled CAs and those added from each file and folder. */
  trustedCertificates: ReturnType<typeof trustSummary>;
  /** What the agent would warn about at start without stopping: files of the CA folders it skips. */
  warnings: string[];
}

export interface CheckConfigIo {
  /** The process environment, without the .env file (that is read here, as the agent does). */
  env: Environment;
  workingDirectory: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const BROKERS_FROM_PORT = 'fetched from the Port API at start (GET /v1/kafka-credentials)';
const NO_KAFKA = 'not used (STREAMER_NAME=POLLING)';

/** Variable names that hold credentials even when the schema forgets to mark them `sensitive`. */
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|_KEY$|USERNAME/i;

function isSecretVariable(key: string, variable: string): boolean {
  return SENSITIVE_KEYS.has(key) || SECRET_VARIABLES.has(variable.toUpperCase()) || SECRET_NAME.test(variable);
}

/** A URL with user info keeps its shape but not its credentials, in case a schema entry is not marked sensitive. */
function withoutCredentials(value: unknown): unknown {
  if (typeof value !== 'string' || !value.includes('@')) return value;
  try {
    const url = new URL(value);
    if (url.username === '' && url.password === '') return value;
    url.username = 'redacted';
    url.password = '';
    return url.toString();
  } catch {
    return value;
  }
}

function valueAt(properties: unknown, key: string): unknown {
  let current = properties;
  for (const part of key.split('.')) current = isPlainObject(current) ? current[part] : undefined;
  return current;
}

function describeVariables(processEnv: Environment, merged: Environment): Record<string, VariableReport> {
  // Formats are registered by config/load.ts; loadConfig has already validated this environment.
  const properties: unknown = convict(CONFIG_SCHEMA, { env: merged as NodeJS.ProcessEnv, args: [] }).getProperties();
  const variables: Record<string, VariableReport> = {};
  for (const [key, variable] of VARIABLE_BY_KEY) {
    const from: ValueSource = processEnv[variable] !== undefined ? 'environment' : merged[variable] !== undefined ? '.env' : 'default';
    const raw = merged[variable];
    const value = isSecretVariable(key, variable)
      ? raw !== undefined && raw !== '' ? SECRET_SET : SECRET_NOT_SET
      : withoutCredentials(valueAt(properties, key));
    variables[variable] = { value, from };
  }
  return variables;
}

/**
 * Loads everything the agent loads before it connects anywhere.
 * @throws ConfigError or MappingError with the agent's one-line message.
 */
export function checkConfig(processEnv: Environment, workingDirectory: string): CheckConfigOutput {
  const env = withEnvFile(processEnv, workingDirectory);
  const config = loadConfig(env);
  const environment = expressionEnvironment(env);
  const loaded = loadMappings({ ...config.mapping, workingDirectory }, (dialect) => createCompiler(dialect, environment));
  try {
    // The agent runs such a file as the official agent does, but a new file should not ship with one.
    const [uncompiled] = loaded.uncompiled;
    if (uncompiled) {
      throw new MappingError(`${uncompiled.message} (the agent would start and run it as null, as the official agent does; fix it before it ships)`, {
        ...(uncompiled.mappingIndex === undefined ? {} : { mappingIndex: uncompiled.mappingIndex }),
      });
    }
    const trusted = startupChecks(config, loaded.mappings, decryptionKey(config.port.clientSecret));
    const envFile = join(workingDirectory, '.env');
    return {
      valid: true,
      variables: describeVariables(processEnv, env),
      effective: {
        orgId: config.port.orgId,
        groupId: config.kafka.groupId,
        runsTopic: config.kafka.runsTopic,
        changeLogTopic: config.kafka.changeLogTopic,
        kafkaBrokers: config.streamerName === 'POLLING' ? NO_KAFKA : config.kafka.useLocalPortInstance ? config.kafka.bootstrapServers : BROKERS_FROM_PORT,
        portApiBaseUrl: String(withoutCredentials(config.port.apiBaseUrl)),
      },
      mapping: {
        path: loaded.path,
        builtIn: loaded.isBuiltIn,
        dialect: loaded.dialect,
        dialectReason: loaded.reason,
        mappings: loaded.mappings.length,
        decrypting: loaded.mappings.filter((mapping) => mapping.fieldsToDecryptPaths.length > 0).map((mapping) => mapping.index),
      },
      envFile: existsSync(envFile) ? envFile : null,
      trustedCertificates: trustSummary(trusted),
      warnings: trusted.skipped.map((skipped) => `certificate file skipped: ${describeSkipped(skipped)}`),
    };
  } finally {
    loaded.compiler.close();
  }
}

/** Runs the command; resolves with the exit code: 0 valid, 2 not (one line on stderr, as the agent prints it). */
export async function runCheckConfigCommand(argv: string[], io: CheckConfigIo): Promise<number> {
  let help: boolean | undefined;
  try {
    ({ values: { help } } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (error) {
    io.stderr.write(`port-agent check-config: ${describeError(error)}\n${CHECK_CONFIG_USAGE}\n`);
    return 2;
  }
  if (help) {
    io.stdout.write(`${CHECK_CONFIG_USAGE}\n`);
    return 0;
  }
  let output: CheckConfigOutput;
  try {
    output = checkConfig(io.env, io.workingDirectory);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof MappingError) {
      io.stderr.write(`port-agent: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  io.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  // Warnings do not make the configuration invalid: the agent starts with them too.
  for (const warning of output.warnings) io.stderr.write(`port-agent: warning: ${warning}\n`);
  return 0;
}
