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
