/**
 * The official agent also reads a `.env` file in the working directory (SPEC §1); a variable set in
 * the real environment wins over the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';
import { ConfigError } from '../errors.js';
import type { Environment } from './load.js';

export function withEnvFile(env: Environment, directory: string): Environment {
  const path = join(directory, '.env');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return env;
    throw new ConfigError(`Invalid configuration: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`, {
      cause: error,
    });
  }
  const fromFile = parse(text);
  const merged: Record<string, string | undefined> = { ...fromFile };
  for (const [name, value] of Object.entries(env)) if (value !== undefined) merged[name] = value;
  return merged;
}
