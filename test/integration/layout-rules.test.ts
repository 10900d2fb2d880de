import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: REPO_ROOT });

/** The layout errors ESLint reports for `code` placed at `filePath`. */
async function layoutErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((message) => message.ruleId === 'no-restricted-imports').map((message) => message.message);
}

describe('the layout rules the linter keeps (docs/development.md#layout)', () => {
  it('refuses delivery or reporting reaching the source (offsets), each other, or the pipeline', async () => {
    const cases: [string, string][] = [
      ['src/delivery/probe.ts', "import type { Source } from '../sources/types.js';"],
      ['src/delivery/probe.ts', "import type { Reporter } from '../reporting/reporter.js';"],
      ['src/reporting/probe.ts', "import type { Deliverer } from '../delivery/send.js';"],
      ['src/reporting/probe.ts', "import type { AgentMetrics } from '../health/metrics.js';"],
      ['src/message/probe.ts', "import type { Mapper } from '../mapping/render.js';"],
      ['src/health/probe.ts', "import type { Source } from '../sources/types.js';"],
      ['src/pipeline/probe.ts', "import type { Source } from '../sources/types.js';"],
      ['src/config/probe.ts', "import type { TargetPolicy } from '../delivery/target-policy.js';"],
    ];
    for (const [filePath, line] of cases) {
      const errors = await layoutErrors(filePath, `${line}\nexport type Probe = unknown;\n`);
      assert.equal(errors.length, 1, `${filePath}: ${line}`);
      assert.match(errors[0] ?? '', /imports point down the layout/);
    }
  });

  it('keeps shared code and the base files free of anything above them', async () => {
    assert.equal((await layoutErrors('src/shared/probe.ts', "import { describeError } from '../errors.js';\nexport const probe = describeError;\n")).length, 1);
    assert.equal((await layoutErrors('src/log.ts', "import type { Config } from './config/load.js';\nexport type Probe = Config;\n")).length, 1);
  });

  it('lets each folder import what sits below it', async () => {
    const allowed: [string, string][] = [
      ['src/delivery/probe.ts', "import type { ServiceResponse } from '../shared/service-response.js';"],
      ['src/reporting/probe.ts', "import type { RetryPolicy } from '../retry/retry-policy.js';"],
      ['src/sources/probe.ts', "import type { PortClient } from '../reporting/port-client.js';"],
      ['src/pipeline/probe.ts', "import type { Deliverer } from '../delivery/send.js';"],
      ['src/agent.ts', "import type { Source } from './sources/types.js';"],
    ];
    for (const [filePath, line] of allowed) {
      assert.deepEqual(await layoutErrors(filePath, `${line}\nexport type Probe = unknown;\n`), [], `${filePath}: ${line}`);
    }
  });
});
