// Preloaded into the agent (`NODE_OPTIONS=--import <this file>`) by `BENCH_AGENT_PROFILE`: Node 20
// refuses `--cpu-prof` in NODE_OPTIONS, and the agent runs as `node dist/src/main.js` with no room
// for flags. Profiles the whole process and writes `<dir>/CPU.<pid>.cpuprofile` (V8's format) as
// it exits; plain JavaScript because the agent runs without tsx.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const directory = process.env.BENCH_AGENT_PROFILE_DIR;
// V8's default is 1000 µs; finer sampling sees the many short callbacks of one run.
const SAMPLING_INTERVAL_US = 250;

if (directory) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
  session.post('Profiler.start');
  // An in-process inspector session answers synchronously, so this completes inside 'exit'.
  process.once('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (error) process.stderr.write(`cpu profiler: ${error.message}\n`);
      else writeFileSync(join(directory, `CPU.${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
