/**
 * Where the agent's CPU time goes: a V8 CPU profile (written by `cpu-profiler.mjs`) cut to a time window and
 * summed by package or source file and by function, so a missed benchmark goal comes with the
 * profile that explains it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of V8's `.cpuprofile` format read here. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  /** Microseconds on the monotonic clock, as `process.hrtime` counts. */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) of one package, file or function within the window. */
export interface ProfileEntry {
  name: string;
  selfMs: number;
}

export interface ProfileSummary {
  /** Sampled time inside the window, in ms. */
  totalMs: number;
  byArea: ProfileEntry[];
  byFunction: ProfileEntry[];
}

/** A window on the monotonic clock, in microseconds (`process.hrtime.bigint() / 1000n`). */
export interface MonotonicWindowUs {
  startUs: number;
  endUs: number;
}

const NODE_MODULES = '/node_modules/';
const AGENT_SOURCES = '/dist/src/';

/** The profile `cpu-profiler.mjs` wrote in `directory` for one process. */
export function readProfileOf(directory: string, pid: number): CpuProfile {
  const name = readdirSync(directory).find((file) => file.endsWith('.cpuprofile') && file.includes(`.${pid}.`));
  if (name === undefined) throw new Error(`No CPU profile of process ${pid} in ${directory} (did it exit cleanly?)`);
  return JSON.parse(readFileSync(join(directory, name), 'utf8')) as CpuProfile;
}

/** A package (`kafkajs`), a Node module (`node:http`), an agent file or a V8 pseudo-frame (`(garbage collector)`). */
function areaOf(url: string, functionName: string): string {
  const packageAt = url.lastIndexOf(NODE_MODULES);
  if (packageAt >= 0) {
    const [scopeOrName = '', name = ''] = url.slice(packageAt + NODE_MODULES.length).split('/');
    return scopeOrName.startsWith('@') ? `${scopeOrName}/${name}` : scopeOrName;
  }
  const sourceAt = url.indexOf(AGENT_SOURCES);
  if (sourceAt >= 0) return `agent src/${url.slice(sourceAt + AGENT_SOURCES.length)}`;
  if (url.startsWith('node:')) return `node:${url.slice('node:'.length).replace(/^internal\//, '').split('/')[0] ?? ''}`;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native code and V8 built-ins)';
  return url;
}

function functionLabel(url: string, functionName: string, lineNumber: number): string {
  const file = url === '' ? '' : ` ${url.slice(url.lastIndexOf('/') + 1)}:${lineNumber + 1}`;
  return `${functionName === '' ? '(anonymous)' : functionName}${file}`;
}

function ranked(totals: Map<string, number>): ProfileEntry[] {
  return [...totals].map(([name, selfMs]) => ({ name, selfMs })).sort((a, b) => b.selfMs - a.selfMs);
}

/** Sums the samples taken inside `window` by area and by function. */
export function summarizeProfile(profile: CpuProfile, window: MonotonicWindowUs): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let totalMs = 0;
  let sampledAtUs = profile.startTime;
  profile.samples.forEach((nodeId, index) => {
    sampledAtUs += profile.timeDeltas[index] ?? 0;
    const frame = nodes.get(nodeId);
    if (frame === undefined || sampledAtUs < window.startUs || sampledAtUs > window.endUs) return;
    // A sample stands for the time since the previous one.
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    totalMs += ms;
    const area = areaOf(frame.url, frame.functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    const label = functionLabel(frame.url, frame.functionName, frame.lineNumber);
    byFunction.set(label, (byFunction.get(label) ?? 0) + ms);
  });
  return { totalMs, byArea: ranked(byArea), byFunction: ranked(byFunction) };
}
