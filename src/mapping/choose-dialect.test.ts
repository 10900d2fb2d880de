import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { MappingError } from '../errors.js';
import { BUILT_IN_MAPPING_PATH } from '../shared/package-root.js';
import { compileInDialect } from './choose-dialect.js';
import type { CompilerFactory } from './choose-dialect.js';
import { createCompiler } from './dialects.js';
import { createJqCompiler } from './jq-engine.js';
import type { DialectCompiler, MappingDialect } from './dialects.js';
import { createMapper } from './render.js';

const OFFICIAL_JQ_DEFAULT: unknown = JSON.parse(readFileSync(new URL('../../test/fixtures/official-default-mapping.jq.json', import.meta.url), 'utf8'));
const BUILT_IN_JSONATA: unknown = JSON.parse(readFileSync(BUILT_IN_MAPPING_PATH, 'utf8'));
const OFFICIAL_TEST_MAPPING: unknown = (
  JSON.parse(readFileSync(new URL('../../test/fixtures/official-agent-cases.json', import.meta.url), 'utf8')) as { mapping_files: Record<string, unknown> }
).mapping_files.mock_control_the_payload_config;
const ENVIRONMENT = { GITLAB_URL: 'https://gitlab.internal/', platform_infra_deployer: 'glptt-token' };

/** A factory that remembers what it made and which of those were closed. */
function trackingFactory(): { compilerFor: CompilerFactory; open: () => MappingDialect[] } {
  const made: { dialect: MappingDialect; closed: boolean }[] = [];
  return {
    compilerFor: (dialect) => {
      const compiler = createCompiler(dialect, ENVIRONMENT);
      const entry = { dialect, closed: false };
      made.push(entry);
      return {
        ...compiler,
        compile: (source: string) => compiler.compile(source),
        close: () => {
          entry.closed = true;
          compiler.close();
        },
      } satisfies DialectCompiler;
    },
    open: () => made.filter((entry) => !entry.closed).map((entry) => entry.dialect),
  };
}

const kept: DialectCompiler[] = [];
after(() => {
  for (const compiler of kept) compiler.close();
});

function detect(raw: unknown, dialect?: MappingDialect) {
  const setting = dialect === undefined ? undefined : { dialect, setBy: 'CONTROL_THE_PAYLOAD_DIALECT' };
  const factory = trackingFactory();
  const result = compileInDialect(raw, setting, factory.compilerFor);
  kept.push(result.compiler);
  return { ...result, open: factory.open() };
}

describe('compileInDialect', () => {
  it('detects jq for the official default mapping when no dialect is set, and can evaluate it', async () => {
    const result = detect(OFFICIAL_JQ_DEFAULT);
    assert.equal(result.dialect, 'jq');
    assert.equal(result.compiler.dialect, 'jq');
    assert.match(result.reason, /^CONTROL_THE_PAYLOAD_DIALECT is not set and every expression compiles as jq, not as JSONata \(Mapping 0, field "enabled": the jsonata expression "\.payload/);
    assert.equal(result.mappings.length, 2);
    assert.deepEqual(result.open, ['jq'], 'the JSONata attempt is closed, the chosen compiler stays open');
    const url = result.mappings[1]?.url;
    assert.equal(url?.kind, 'expression');
    assert.equal(await url.expression.evaluate({ payload: { action: { invocationMethod: { url: 'http://svc' } } } }), 'http://svc');
  });

  it('detects JSONata for the built-in default mapping', () => {
    const result = detect(BUILT_IN_JSONATA);
    assert.equal(result.dialect, 'jsonata');
    assert.match(result.reason, /^CONTROL_THE_PAYLOAD_DIALECT is not set and every expression compiles as JSONata, not as jq \(Mapping \d+, field "[^"]+": the jq expression /);
    assert.deepEqual(result.open, ['jsonata']);
  });

  it('keeps JSONata, the default, when every expression fits both, and says so', () => {
    const result = detect([{ enabled: true, url: '"http://svc.internal/hook"', method: '"PUT"' }]);
    assert.equal(result.dialect, 'jsonata');
    assert.equal(result.reason, 'CONTROL_THE_PAYLOAD_DIALECT is not set and every expression compiles both as JSONata and as jq: JSONata, the default (set CONTROL_THE_PAYLOAD_DIALECT=jq for jq)');
    assert.deepEqual(result.open, ['jsonata'], 'the jq compiler is closed');
  });

  it('uses the dialect set, without trying the other', () => {
    const result = detect(OFFICIAL_JQ_DEFAULT, 'jq');
    assert.equal(result.reason, 'CONTROL_THE_PAYLOAD_DIALECT=jq');
    assert.deepEqual(result.open, ['jq']);
    const factory = trackingFactory();
    assert.throws(
      () => compileInDialect(OFFICIAL_JQ_DEFAULT, { dialect: 'jsonata', setBy: '--dialect' }, factory.compilerFor),
      (error: unknown) => error instanceof MappingError && /^Mapping 0, field "enabled": the jsonata expression "\.payload/.test(error.message),
    );
    assert.deepEqual(factory.open(), [], 'the failed compiler is closed');
  });

  it('names the first expression that fails in each dialect when the file fits neither', () => {
    const factory = trackingFactory();
    const neither = [{ enabled: 'payload.kind = "deploy"', url: '"http://x"' }, { url: '.payload.url', body: { n: '1 +' } }];
    assert.throws(
      () => compileInDialect(neither, undefined, factory.compilerFor),
      (error: unknown) =>
        error instanceof MappingError &&
        error.message.startsWith('The payload mapping fits neither dialect (CONTROL_THE_PAYLOAD_DIALECT is not set). As JSONata: Mapping 1, field "url": the jsonata expression ".payload.url" does not compile') &&
        error.message.includes('As jq: Mapping 0, field "enabled": the jq expression "payload.kind = \\"deploy\\"" does not compile'),
    );
    assert.deepEqual(factory.open(), []);
  });

  it('runs the official test file, whose enabled jq refuses, as the official agent does: that expression yields null', async () => {
    const result = detect(OFFICIAL_TEST_MAPPING);
    assert.equal(result.dialect, 'jq');
    assert.match(result.reason, /the file is jq the official agent runs: 1 expression does not compile in jq, each yielding null as in the official agent, and JSONata refuses those and more/);
    assert.deepEqual(
      result.uncompiled.map((error) => [error.mappingIndex, error.field, error.expression]),
      [[0, 'enabled', '.payload.non-existing-field']],
    );
    assert.match(result.uncompiled[0]?.message ?? '', /^Mapping 0, field "enabled": the jq expression "\.payload\.non-existing-field" does not compile: .*not defined/);
    const mapper = createMapper(result.mappings);
    const chosen = await mapper.select({ resourceType: 'run', payload: { 'non-existing-field': true } });
    assert.equal(chosen?.index, 1, 'the uncompiled enabled never matches, even where the field exists');
    assert.deepEqual(result.open, ['jq']);
  });

  it('tolerates an uncompiled jq expression with the dialect set, where it yields null, but never a JSONata one', async () => {
    const result = detect([{ url: '"http://x"', body: { kept: '.a', broken: '.a | ' } }], 'jq');
    assert.equal(result.uncompiled.length, 1);
    const [mapping] = result.mappings;
    assert.ok(mapping);
    const request = await createMapper(result.mappings).renderRequest(mapping, { a: 7 }, { url: undefined, method: 'POST', body: {}, headers: {} });
    assert.deepEqual(request.body, { kept: 7, broken: null });
    const factory = trackingFactory();
    assert.throws(() => compileInDialect([{ url: "'http://x'", body: 'a &' }], { dialect: 'jsonata', setBy: 'CONTROL_THE_PAYLOAD_DIALECT' }, factory.compilerFor), /field "body": the jsonata expression "a &" does not compile/);
    assert.deepEqual(factory.open(), [], 'the refused compiler is closed');
  });

  it('refuses, with the way out, a jq file whose only refused expression JSONata refuses too', () => {
    const factory = trackingFactory();
    const tie = [{ enabled: '.payload.non-existing-field', url: 'env.URL' }];
    assert.throws(
      () => compileInDialect(tie, undefined, factory.compilerFor),
      /fits neither dialect .*Set CONTROL_THE_PAYLOAD_DIALECT=jq to run it as the official agent does/,
    );
    assert.deepEqual(factory.open(), []);
    assert.equal(detect(tie, 'jq').uncompiled.length, 1, 'with the dialect set it runs');
  });

  it('never runs as jq a JSONata file whose valid expressions jq refuses', () => {
    const factory = trackingFactory();
    const jsonataWithSlips = [{ url: "'http://x/'", body: { a: 'payload.a', b: '.b', c: '.c' } }];
    assert.throws(() => compileInDialect(jsonataWithSlips, undefined, factory.compilerFor), (error: unknown) => error instanceof MappingError && !error.message.includes('Set CONTROL_THE_PAYLOAD_DIALECT=jq'));
    assert.deepEqual(factory.open(), []);
  });

  it('stops when jq cannot run, rather than run every expression as null', () => {
    const missingJq: CompilerFactory = (dialect) => (dialect === 'jq' ? createJqCompiler({ environment: {}, jqPath: '/nonexistent/jq' }) : createCompiler(dialect, ENVIRONMENT));
    assert.throws(() => compileInDialect([{ url: '.payload.url' }], { dialect: 'jq', setBy: 'CONTROL_THE_PAYLOAD_DIALECT' }, missingJq), /the jq program cannot run/);
    assert.throws(() => compileInDialect(OFFICIAL_TEST_MAPPING, undefined, missingJq), /fits neither dialect .*As jq: .*the jq program cannot run/);
  });

  it('keeps a JSONata file with a typo an error rather than running it as jq', () => {
    const factory = trackingFactory();
    const jsonataWithTypo = [{ enabled: "payload.kind = 'deploy'", url: "'http://x/' & payload.name", body: { n: 'payload.count +' } }];
    assert.throws(() => compileInDialect(jsonataWithTypo, undefined, factory.compilerFor), /^MappingError: The payload mapping fits neither dialect/);
    assert.deepEqual(factory.open(), []);
  });

  it('reports a mistake in the file\'s shape once, whatever the dialect', () => {
    assert.throws(() => detect({ not: 'a list' }), (error: unknown) => error instanceof MappingError && error.message === 'The payload mapping must be a JSON list of mappings');
    assert.throws(() => detect([{ urll: '"x"' }]), /^MappingError: Mapping 0, field "urll": unknown field/);
  });
});
