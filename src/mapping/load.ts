/**
 * Reads the payload-mapping file chosen by SPEC §1: CONTROL_THE_PAYLOAD_CONFIG_PATH when set (a
 * missing or invalid file is then a configuration error), else ./control_the_payload_config.json
 * when present (where the official chart mounts it), else the built-in default in config/.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, describeError } from '../errors.js';
import { BUILT_IN_MAPPING_PATH } from '../package-root.js';
import { compileMappings } from './compile.js';
import type { ExpressionCompiler } from './expression.js';
import type { CompiledMapping } from './types.js';

export interface LoadedMappings {
  mappings: CompiledMapping[];
  /** Absolute path of the file used. */
  path: string;
  isBuiltIn: boolean;
}

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

export function loadMappings(
  options: { path: string; isExplicit: boolean; workingDirectory: string },
  compiler: ExpressionCompiler,
): LoadedMappings {
  const path = resolve(options.workingDirectory, options.path);
  const useBuiltIn = !options.isExplicit && !fileExists(path);
  const chosen = useBuiltIn ? BUILT_IN_MAPPING_PATH : path;
  const raw = readJson(chosen, options.isExplicit ? "CONTROL_THE_PAYLOAD_CONFIG_PATH " : "");
  return { mappings: compileMappings(raw, compiler), path: chosen, isBuiltIn: useBuiltIn };
}
