// Installs the locked npm packages when they are missing, so `npm test` and `npm run demo` work
// from a fresh clone. Plain JavaScript: it runs before TypeScript tooling exists.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const installed = 'node_modules/.package-lock.json';
const isStale = !existsSync(installed) || statSync(installed).mtimeMs < statSync('package-lock.json').mtimeMs;
if (isStale) {
  process.stderr.write('installing npm packages (npm ci)…\n');
  execSync('npm ci --no-audit --no-fund --loglevel=error', { stdio: 'inherit' });
}
