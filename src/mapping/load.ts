/**
 * Reads the payload-mapping file: CONTROL_THE_PAYLOAD_CONFIG_PATH when set (a missing or invalid
 * file is then a configuration error), else ./control_the_payload_config.json when present (where
 * the official chart mounts it), else the built-in default in config/ — and compiles it in its
 * dialect (choose-dialect.ts).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, describeError } from '../errors.js';
import { BUILT_IN_MAPPING_PATH } from '../shared/package-root.js';
import { compileInDialect } from './choose-dialect.js';
import type { CompiledInDialect, CompilerFactory } from './choose-dialect.js';
import type { MappingDialect } from './dialects.js';

export interface LoadedMappings extends CompiledInDialect {
  /** Absolute path of the file used. */
  path: string;
  isBuiltIn: boolean;
}

/** The built-in default is written in JSONata; CONTROL_THE_PAYLOAD_DIALECT speaks of the operator's file. */
const BUILT_IN_DIALECT: MappingDialect = 'jsonata';

function readJson(path: string, variableHint: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${variableHint}cannot read the payload mapping file ${path} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`, {
      variable: 'CONTROL_THE_PAYLOAD_CONFIG_PATH',
      cause: error,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConfigError(`Invalid configuration: the payload mapping file ${path} is not valid JSON: ${describeError(error)}`, {
      variable: 'CONTROL_THE_PAYLOAD_CONFIG_PATH',
      cause: error,
    });
  }
}

function fileExists(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * `options.dialect` is CONTROL_THE_PAYLOAD_DIALECT, undefined when not set. The returned compiler
 * is open: the caller closes it when the mappings are no longer evaluated.
 */
export function loadMappings(
  options: { path: string; isExplicit: boolean; workingDirectory: string; dialect?: MappingDialect | undefined },
  compilerFor: CompilerFactory,
): LoadedMappings {
  const path = resolve(options.workingDirectory, options.path);
  const useBuiltIn = !options.isExplicit && !fileExists(path);
  const chosen = useBuiltIn ? BUILT_IN_MAPPING_PATH : path;
  const raw = readJson(chosen, options.isExplicit ? "CONTROL_THE_PAYLOAD_CONFIG_PATH " : "");
  if (useBuiltIn) {
    const compiled = compileInDialect(raw, { dialect: BUILT_IN_DIALECT, setBy: 'built-in' }, compilerFor);
    return { ...compiled, reason: 'the built-in default mapping is written in JSONata', path: chosen, isBuiltIn: true };
  }
  const setting = options.dialect === undefined ? undefined : { dialect: options.dialect, setBy: 'CONTROL_THE_PAYLOAD_DIALECT' };
  return { ...compileInDialect(raw, setting, compilerFor), path: chosen, isBuiltIn: false };
}
