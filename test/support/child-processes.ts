import type { ChildProcess } from 'node:child_process';

const liveChildren = new Set<ChildProcess>();
let isExitHandlerInstalled = false;

/** A broker or agent left running by a failed test must not outlive the test process. */
export function killOnExit(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (isExitHandlerInstalled) return;
  isExitHandlerInstalled = true;
  process.once('exit', () => {
    for (const live of liveChildren) {
      try {
        live.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** How a helper process (kcat, stunnel) ended, or why it never started; read while waiting for it. */
export interface ExitTracker {
  /** Settles once the process has exited (or failed to spawn). */
  exited: Promise<void>;
  /** `code …, signal …` once it has exited, else undefined. */
  exitDescription(): string | undefined;
  spawnError(): Error | undefined;
  /** The start of its stderr (up to `maxStderrChars`), which is drained so the process never blocks on a full pipe. */
  stderr(): string;
}

export function trackExit(child: ChildProcess, maxStderrChars: number): ExitTracker {
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < maxStderrChars) stderr += chunk;
  });
  let spawnError: Error | undefined;
  let exitDescription: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitDescription = `code ${String(code)}, signal ${String(signal)}`;
      resolve();
    });
    child.once('error', (error) => {
      spawnError = error;
      // 'exit' is not emitted when the spawn itself failed.
      if (child.pid === undefined) resolve();
    });
  });
  return { exited, exitDescription: () => exitDescription, spawnError: () => spawnError, stderr: () => stderr };
}
