/**
 * CPU time and peak memory of another process, read from Linux's /proc: the agent benchmark runs
 * the agent as its own process and must measure it from the outside.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// Fallback when `getconf` is missing: the tick rate of every mainstream Linux build.
const DEFAULT_CLOCK_TICKS_PER_SECOND = 100;
// /proc/<pid>/stat fields after the `(comm)` field: state is field 3, utime 14, stime 15 (proc(5)).
const UTIME_INDEX_AFTER_COMM = 14 - 3;
const STIME_INDEX_AFTER_COMM = 15 - 3;

function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : DEFAULT_CLOCK_TICKS_PER_SECOND;
  } catch {
    return DEFAULT_CLOCK_TICKS_PER_SECOND;
  }
}

const CLOCK_TICKS_PER_SECOND = clockTicksPerSecond();

/** User + system CPU time a process has used so far, in ms (resolution: one clock tick, 10 ms). */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces and parentheses: split after its last `)`.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[UTIME_INDEX_AFTER_COMM]) + Number(fields[STIME_INDEX_AFTER_COMM]);
  if (!Number.isFinite(ticks)) throw new Error(`Unexpected /proc/${pid}/stat: ${stat}`);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** A `/proc/<pid>/status` size line (`VmRSS`, `VmHWM`), in bytes. */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kibibytes = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status)?.[1];
  if (kibibytes === undefined) throw new Error(`No ${field} line in /proc/${pid}/status`);
  return Number(kibibytes) * 1024;
}

/** The highest resident set size the process has had (`VmHWM`), in bytes. */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

/** The process's resident set size now (`VmRSS`), in bytes. */
export function residentBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}
