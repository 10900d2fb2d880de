/**
 * The folder holding the agent's package.json. Compiled code (dist/src/…) and sources run by tsx
 * (src/…) sit at different depths, so files shipped beside the code (config/) are found from here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  let directory = start;
  for (;;) {
    if (existsSync(join(directory, 'package.json')) && existsSync(join(directory, 'config'))) return directory;
    const parent = dirname(directory);
    if (parent === directory) throw new Error(`port-agent: cannot find the package root above ${start}`);
    directory = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
export const BUILT_IN_MAPPING_PATH = join(PACKAGE_ROOT, 'config', 'default-mapping.json');

/** The agent's version, from its package.json (build info, User-Agent-free logs). */
export const AGENT_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
