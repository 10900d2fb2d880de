/**
 * The Helm chart in helm/port-agent, rendered by `helm template` when helm is on the PATH, else by
 * the repository's tools/helm-template (helm's template engine, values merging and schema
 * validation, without a cluster), and parsed into manifests the chart's tests read as data.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

const BUNDLED_RENDERER = fileURLToPath(new URL('../../tools/helm-template/helm-template', import.meta.url));
/**
 * `helm template` when helm is installed; else the repository's renderer, whose --strict also
 * checks each document's shape (helm template has no such flag: a real helm validates at install).
 */
export const RENDERER = spawnSync('helm', ['version', '--short'], { stdio: 'ignore' }).status === 0
  ? { name: 'helm template', command: 'helm', leadingArgs: ['template'], strictArgs: [] as string[] }
  : { name: 'helm-template', command: BUNDLED_RENDERER, leadingArgs: [] as string[], strictArgs: ['--strict'] };
export const CHART = fileURLToPath(new URL('../../helm/port-agent', import.meta.url));
export const RELEASE = 'my-port-agent';
export const NAMESPACE = 'port-agent';
// The first render compiles the renderer (apt-get install of Debian's Go, about a minute).
export const FIRST_RENDER_TIMEOUT_MS = 600_000;

const chartMetadata: unknown = parse(readFileSync(`${CHART}/Chart.yaml`, 'utf8'));
export const APP_VERSION = String(field(chartMetadata, 'appVersion'));

export function example(name: string): string {
  return `${CHART}/examples/${name}.yaml`;
}

export function readExample(name: string): unknown {
  return parse(readFileSync(example(name), 'utf8'));
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runRenderer(args: readonly string[], stdin = ''): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(RENDERER.command, [...RENDERER.leadingArgs, RELEASE, CHART, '--namespace', NAMESPACE, ...args], { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** Compiles the renderer (the first render's cost), so that tests after it are timed on rendering alone. */
export async function compileRenderer(): Promise<void> {
  const result = await runRenderer(['--show-only', 'templates/secret.yaml']);
  assert.equal(result.code, 0, result.stderr);
}

export interface Manifest {
  kind: string;
  name: string;
  body: unknown;
}

export class Rendered {
  constructor(readonly manifests: readonly Manifest[]) {}

  kinds(): string[] {
    return this.manifests.map((manifest) => manifest.kind).sort();
  }

  one(kind: string): unknown {
    const found = this.manifests.filter((manifest) => manifest.kind === kind);
    assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
    return found[0]?.body;
  }

  has(kind: string): boolean {
    return this.manifests.some((manifest) => manifest.kind === kind);
  }

  get podTemplate(): unknown {
    return field(this.one('Deployment'), 'spec', 'template');
  }

  get podSpec(): unknown {
    return field(this.podTemplate, 'spec');
  }

  get container(): unknown {
    const containers = list(field(this.podSpec, 'containers'));
    assert.equal(containers.length, 1);
    return containers[0];
  }

  /** The container's plain variables as name -> value; those from a Secret as name -> ref. */
  get env(): Map<string, unknown> {
    return new Map(
      list(field(this.container, 'env')).map((entry) => [String(field(entry, 'name')), field(entry, 'value') ?? field(entry, 'valueFrom')]),
    );
  }

  get annotations(): Record<string, unknown> {
    return record(field(this.podTemplate, 'metadata', 'annotations') ?? {});
  }
}

/** Renders (strictly where the renderer can) and parses the documents. */
export async function render(args: readonly string[] = [], stdin = ''): Promise<Rendered> {
  const result = await runRenderer([...RENDERER.strictArgs, ...args], stdin);
  assert.equal(result.code, 0, `${RENDERER.name} ${args.join(' ')} failed:\n${result.stderr}`);
  const manifests = parseAllDocuments(result.stdout).flatMap((document) => {
    assert.deepEqual(document.errors, []);
    const body: unknown = document.toJS();
    if (body === null || body === undefined) return [];
    return [{ kind: String(field(body, 'kind')), name: String(field(body, 'metadata', 'name')), body }];
  });
  return new Rendered(manifests);
}

export async function renderFails(args: readonly string[], stdin = ''): Promise<string> {
  const result = await runRenderer([...RENDERER.strictArgs, ...args], stdin);
  assert.notEqual(result.code, 0, `expected ${RENDERER.name} ${args.join(' ')} to fail`);
  return result.stderr;
}

export function field(value: unknown, ...path: ReadonlyArray<string | number>): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

export function list(value: unknown): unknown[] {
  assert.ok(Array.isArray(value), `expected a list, got ${JSON.stringify(value)}`);
  return value;
}

export function record(value: unknown): Record<string, unknown> {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `expected a map, got ${JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

export function byName(items: unknown, name: string): unknown {
  const found = list(items).find((item) => field(item, 'name') === name);
  assert.ok(found !== undefined, `no entry named ${name} in ${JSON.stringify(items)}`);
  return found;
}
