/**
 * Mapping cost per message (issue 4): choose + render the request + render the report, for the
 * default mapping and a 20-field custom mapping, in both dialects. Run: `npm run bench:mapping`.
 * Prints µs per message one at a time (latency) and with 64 messages in flight (throughput, what
 * a concurrent agent sees; the jq engine is one resident process answering in order).
 */
import { readFileSync } from 'node:fs';
import { compileMappings } from '../src/mapping/compile.js';
import { createCompiler } from '../src/mapping/dialects.js';
import type { MappingDialect } from '../src/mapping/dialects.js';
import { loadMappings } from '../src/mapping/load.js';
import { createMapper } from '../src/mapping/render.js';
import type { Mapper } from '../src/mapping/render.js';
import type { CompiledMapping } from '../src/mapping/types.js';
import { actionRunMessage } from '../test/support/messages.js';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 3000);
const IN_FLIGHT = 64;
const environment = { GITLAB_URL: 'https://gitlab.internal/', REGION: 'eu-west-1' };
const message = actionRunMessage({ runId: 'r_bench', url: 'http://svc.internal/deploy', synchronized: true, properties: Object.fromEntries(Array.from({ length: 20 }, (_, index) => [`field${index}`, `value-${index}`])) });
const response = { statusCode: 200, headers: { 'content-type': 'application/json' }, text: '{"id":1,"state":"ok"}', json: { id: 1, state: 'ok' } };

function twentyFields(dialect: MappingDialect): unknown {
  const field = (index: number) => (dialect === 'jq' ? `.payload.properties.field${index} + "-" + .context.runId` : `payload.properties.field${index} & '-' & context.runId`);
  return [
    {
      enabled: dialect === 'jq' ? '.payload.action.invocationMethod.type == "WEBHOOK"' : "payload.action.invocationMethod.type = 'WEBHOOK'",
      url: dialect === 'jq' ? '.payload.action.invocationMethod.url' : 'payload.action.invocationMethod.url',
      body: Object.fromEntries(Array.from({ length: 20 }, (_, index) => [`out${index}`, field(index)])),
      report: { summary: dialect === 'jq' ? '"state: " + .response.json.state' : "'state: ' & response.json.state" },
    },
  ];
}

async function once(mapper: Mapper): Promise<void> {
  const mapping = (await mapper.select(message)) as CompiledMapping;
  const request = await mapper.renderRequest(mapping, message, { url: 'http://svc.internal/deploy', method: 'POST', body: message, headers: {} });
  await mapper.renderReport(mapping, { body: message, request, response });
}

async function measure(mapper: Mapper): Promise<{ sequentialUs: number; concurrentUs: number }> {
  for (let index = 0; index < 200; index += 1) await once(mapper);
  let startedAt = performance.now();
  for (let index = 0; index < ITERATIONS; index += 1) await once(mapper);
  const sequentialUs = ((performance.now() - startedAt) * 1000) / ITERATIONS;
  startedAt = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < ITERATIONS) {
        next += 1;
        await once(mapper);
      }
    }),
  );
  const concurrentUs = ((performance.now() - startedAt) * 1000) / ITERATIONS;
  return { sequentialUs, concurrentUs };
}

const cases: { name: string; dialect: MappingDialect; mappings: (compiler: ReturnType<typeof createCompiler>) => CompiledMapping[] }[] = [
  { name: 'default mapping', dialect: 'jsonata', mappings: (compiler) => loadMappings({ path: 'absent.json', isExplicit: false, workingDirectory: '/nonexistent' }, () => compiler).mappings },
  {
    name: 'default mapping (official file)',
    dialect: 'jq',
    mappings: (compiler) => compileMappings(JSON.parse(readFileSync(new URL('../test/fixtures/official-default-mapping.jq.json', import.meta.url), 'utf8')), compiler),
  },
  { name: '20-field custom mapping', dialect: 'jsonata', mappings: (compiler) => compileMappings(twentyFields('jsonata'), compiler) },
  { name: '20-field custom mapping', dialect: 'jq', mappings: (compiler) => compileMappings(twentyFields('jq'), compiler) },
];

console.log(`mapping cost per message (choose + request + report), ${ITERATIONS} messages, Node ${process.version}`);
console.log('mapping                          dialect   one at a time   64 in flight');
for (const benchCase of cases) {
  const compiler = createCompiler(benchCase.dialect, environment);
  try {
    const { sequentialUs, concurrentUs } = await measure(createMapper(benchCase.mappings(compiler)));
    console.log(`${benchCase.name.padEnd(32)} ${benchCase.dialect.padEnd(9)} ${`${sequentialUs.toFixed(0)} µs`.padStart(13)}   ${`${concurrentUs.toFixed(0)} µs`.padStart(12)}`);
  } finally {
    compiler.close();
  }
}
