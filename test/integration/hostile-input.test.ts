/**
 * Issue 7, hostile input: the running agent gets oversized messages, deeply nested JSON, wrong
 * types in every field of the invocation method, invalid UTF-8 and URLs with other schemes (file:,
 * ftp:, data:, javascript:, gopher:, ws:). Each gets a clear log line with its topic, partition and
 * offset, and a FAILURE report where a run id is known; nothing reaches a non-http(s) URL; and the
 * valid runs produced behind them are all delivered promptly. In both mapping dialects: jq 1.6
 * stops at input nested more than 256 levels, and must not take other runs down with it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentLogLine, AgentProcess } from '../support/agent-process.js';
import type { Broker } from '../support/broker.js';
import { createProducer } from '../support/kafka.js';
import { actionRunMessage, changelogMessage, nodeRunMessage, signed } from '../support/messages.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent, startRealParts } from '../support/harness.js';
import type { AgentSetup } from '../support/harness.js';
import { listenCountingConnections } from '../support/counting-listener.js';
import type { CountingListener } from '../support/counting-listener.js';

const OFFICIAL_JQ_DEFAULT = readFileSync(new URL('../fixtures/official-default-mapping.jq.json', import.meta.url), 'utf8');
/**
 * Well above the 1 MB that Kafka brokers accept by default. librdkafka's mock broker keeps at most
 * 5 MiB per partition: past that it drops the oldest data, and dropping a partition's only batch
 * hides the batch being appended too. So 4 MiB, on a partition of its own.
 */
const OVERSIZED_BYTES = 4 * 1024 * 1024;
const VALID_RUNS_BEHIND = 200;
/** Handling 200 runs takes about a second here; the bound leaves room for a slow machine. */
const VALID_RUNS_BOUND_MS = 20_000;
const DEEP_BUT_READABLE_LEVELS = 600;

type Dialect = 'jsonata' | 'jq';

/** What a hostile message must produce. */
interface Expectation {
  level: 'info' | 'warn' | 'error';
  msg: string;
  /** Matched against the line's `err` (or `reason` for skips). */
  detail?: RegExp;
  /** The run's final report: FAILURE with a summary, a failed node run, a finished run, or no call at all. */
  report: { kind: 'failure'; summary: RegExp } | { kind: 'node-failed' } | { kind: 'finished' } | { kind: 'none' };
}

interface HostileCase {
  name: string;
  /** The run id, before the dialect's suffix (both agents report to the same Port stand-in). */
  runId?: string;
  topic: 'runs' | 'changelog';
  /** `id`: the run id with the dialect's suffix. */
  value: (context: CaseContext, id: string) => string | Buffer;
  /** Explicit partition: each oversized message gets its own (see OVERSIZED_BYTES). */
  partition?: number;
  expect: (dialect: Dialect, id: string) => Expectation;
}

interface CaseContext {
  secret: string;
  target: string;
  /** host:port of a TCP listener that counts connections: a non-http(s) URL must never reach it. */
  trap: string;
}

const dropped = (detail: RegExp, summary?: RegExp): Expectation => ({
  level: 'warn',
  msg: 'message dropped: it cannot be read',
  detail,
  report: summary ? { kind: 'failure', summary } : { kind: 'none' },
});

/** The default AGENT_MAX_MESSAGE_BYTES (1 MiB) refuses the message unread; the run id is found in its text. */
const tooLarge = (): Expectation =>
  dropped(
    /^the message is \d+ bytes, larger than AGENT_MAX_MESSAGE_BYTES \(1048576\)$/,
    /^The agent could not read the run's message: the message is \d+ bytes, larger than AGENT_MAX_MESSAGE_BYTES \(1048576\)\.$/,
  );

function run(runId: string, context: CaseContext, invocationMethod: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const message = actionRunMessage({ runId, url: `${context.target}/hostile/${runId}` });
  const action = (message.payload as { action: { invocationMethod: Record<string, unknown> } }).action;
  action.invocationMethod = { ...action.invocationMethod, ...invocationMethod };
  return { ...message, ...extra };
}

/** A run with one invocation-method field replaced, signed so it passes the signature check. */
function wrongField(name: string, runId: string, field: string, value: unknown, expected: RegExp): HostileCase {
  return {
    name,
    runId,
    topic: 'runs',
    value: (context, id) => signed(run(id, context, { [field]: value }), context.secret),
    // The summary is the error, ended with a full stop.
    expect: () => dropped(expected, new RegExp(`^The agent could not read the run's message: ${expected.source.replace(/^\^/, '').replace(/\$$/, '\\.$')}`)),
  };
}

function refusedScheme(name: string, runId: string, url: (context: CaseContext) => string, scheme: string): HostileCase {
  return {
    name,
    runId,
    topic: 'runs',
    value: (context, id) => signed(run(id, context, { url: url(context), synchronized: true }), context.secret),
    expect: () => ({
      level: 'error',
      msg: 'run failed: the request could not be delivered',
      detail: new RegExp(`^invalid URL: the scheme ${scheme} is not allowed \\(only http and https\\)$`),
      report: { kind: 'failure', summary: new RegExp(`^The agent could not deliver the request to POST ${scheme}.*: invalid URL: the scheme ${scheme} is not allowed \\(only http and https\\) \\(after 1 attempt\\)\\.$`) },
    }),
  };
}

const garbagePrefix = (id: string): string => `{"context": {"runId": "${id}"}, "payload": `;
const utf8Prefix = (id: string): string => `{"context": {"runId": "${id}"}, "payload": {"note": "`;

function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < levels; level++) value = level % 2 === 0 ? [value] : { level: value };
  return value;
}

const CASES: HostileCase[] = [
  {
    name: 'a 4 MiB signed run, past AGENT_MAX_MESSAGE_BYTES',
    runId: 'r_oversized',
    topic: 'runs',
    partition: 1,
    value: (context, id) => signed(actionRunMessage({ runId: id, url: `${context.target}/oversized`, properties: { blob: 'x'.repeat(OVERSIZED_BYTES) } }), context.secret),
    expect: () => tooLarge(),
  },
  {
    name: 'a 4 MiB message that is not JSON, with a run id in it',
    runId: 'r_oversized_garbage',
    topic: 'runs',
    partition: 2,
    value: (_context, id) => `${garbagePrefix(id)}${'x'.repeat(OVERSIZED_BYTES)}`,
    expect: () => tooLarge(),
  },
  {
    name: '100,000 levels of [',
    topic: 'runs',
    value: () => '['.repeat(100_000),
    expect: () => dropped(/^not valid JSON: JSON nested too deeply at character 1000$/),
  },
  {
    name: '100,000 levels of {"a": inside a run with a run id',
    runId: 'r_deep_unreadable',
    topic: 'runs',
    value: (_context, id) => `{"context": {"runId": "${id}"}, "payload": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
    expect: () => dropped(/^not valid JSON: JSON nested too deeply at character \d+$/, /^The agent could not read the run's message: not valid JSON: JSON nested too deeply/),
  },
  {
    name: `a signed run with a property nested ${DEEP_BUT_READABLE_LEVELS} levels (readable, but too deep for jq 1.6)`,
    runId: 'r_deep_readable',
    topic: 'runs',
    value: (context, id) => signed(actionRunMessage({ runId: id, url: `${context.target}/deep`, properties: { deep: nested(DEEP_BUT_READABLE_LEVELS) } }), context.secret),
    expect: (dialect) =>
      dialect === 'jsonata'
        ? { level: 'info', msg: 'request delivered', report: { kind: 'finished' } }
        : {
            level: 'error',
            msg: 'run failed: the payload mapping failed',
            detail: /^Mapping 0, field "enabled": the expression failed: the input is nested too deeply for jq/,
            report: { kind: 'failure', summary: /^The payload mapping failed: Mapping 0, field "enabled": the expression failed: the input is nested too deeply for jq/ },
          },
  },
  {
    name: 'invalid UTF-8 in a value of a run',
    runId: 'r_bad_utf8',
    topic: 'runs',
    value: (_context, id) => Buffer.concat([Buffer.from(utf8Prefix(id)), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}}')]),
    expect: (_dialect, id) => {
      const at = Buffer.byteLength(utf8Prefix(id));
      return dropped(new RegExp(`^not valid JSON: Invalid UTF-8 at byte ${at}$`), new RegExp(`^The agent could not read the run's message: not valid JSON: Invalid UTF-8 at byte ${at}\\.$`));
    },
  },
  {
    name: 'invalid UTF-8 and no run id',
    topic: 'changelog',
    value: () => Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
    expect: () => dropped(/^not valid JSON: Invalid UTF-8 at byte 2$/),
  },
  wrongField('url as a number', 'r_url_number', 'url', 42, /^invocationMethod\.url must be a string \(got number\)$/),
  wrongField('url as an object', 'r_url_object', 'url', { href: 'http://127.0.0.1/' }, /^invocationMethod\.url must be a string \(got object\)$/),
  wrongField('url as an array', 'r_url_array', 'url', ['http://127.0.0.1/'], /^invocationMethod\.url must be a string \(got array\)$/),
  wrongField('method as a number', 'r_method_number', 'method', 7, /^invocationMethod\.method must be a string \(got number\)$/),
  wrongField('type as a number', 'r_type_number', 'type', 42, /^invocationMethod\.type must be a string \(got number\)$/),
  wrongField('synchronized as a string', 'r_sync_string', 'synchronized', 'true', /^invocationMethod\.synchronized must be a boolean \(got string\)$/),
  wrongField('headers as a string', 'r_headers_string', 'headers', 'X-Team: payments', /^invocationMethod\.headers must be an object \(got string\)$/),
  wrongField('headers as an array', 'r_headers_array', 'headers', ['X-Team'], /^invocationMethod\.headers must be an object \(got array\)$/),
  wrongField('a header value that is an object', 'r_header_object', 'headers', { 'X-Team': { name: 'payments' } }, /^invocationMethod\.headers\["X-Team"\] must be a string \(got object\)$/),
  wrongField('a header value with a line break', 'r_header_crlf', 'headers', { 'X-Team': 'payments\r\nX-Injected: 1' }, /^invocationMethod\.headers\["X-Team"\] is not a valid HTTP header value/),
  wrongField('a header name with a space', 'r_header_name', 'headers', { 'X Team': 'payments' }, /^invocationMethod\.headers has a name that is not a valid HTTP header name: "X Team"$/),
  ...(
    [
      ['an unknown HTTP method', 'r_method_unknown', 'FROBNICATE'],
      ['a method with a line break', 'r_method_crlf', 'GET /admin HTTP/1.1\r\nX-Injected: 1'],
    ] as const
  ).map(
    ([name, runId, method]): HostileCase => ({
      name,
      runId,
      topic: 'runs',
      value: (context, id) => signed(run(id, context, { method }), context.secret),
      expect: () => ({
        level: 'error',
        msg: 'run failed: the payload mapping failed',
        detail: /^Mapping 1, field "method": must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS/,
        report: { kind: 'failure', summary: /^The payload mapping failed: Mapping 1, field "method": must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS/ },
      }),
    }),
  ),
  {
    name: 'agent as the string "true" (not for an agent: skipped, not reported)',
    runId: 'r_agent_string',
    topic: 'runs',
    value: (context, id) => signed(run(id, context, { agent: 'true' }), context.secret),
    expect: () => ({ level: 'info', msg: 'message skipped: not for an agent', detail: /^payload\.action\.invocationMethod\.agent is not true$/, report: { kind: 'none' } }),
  },
  {
    name: 'an invocation method that is a string',
    runId: 'r_method_is_string',
    topic: 'runs',
    value: (context, id) => {
      const message = run(id, context, {});
      (message.payload as { action: Record<string, unknown> }).action.invocationMethod = 'WEBHOOK';
      return signed(message, context.secret);
    },
    expect: () => ({ level: 'info', msg: 'message skipped: not for an agent', detail: /^no payload\.action\.invocationMethod object$/, report: { kind: 'none' } }),
  },
  {
    name: 'a run id that is a number',
    topic: 'runs',
    value: (context) => signed({ ...run('r_unused', context, {}), context: { runId: 42 } }, context.secret),
    expect: () => dropped(/^the run message has no context\.runId$/),
  },
  {
    name: 'a run id that is a path',
    topic: 'runs',
    value: (context) => signed({ ...run('r_unused', context, {}), context: { runId: 'r_../../v1/organization' } }, context.secret),
    expect: () => dropped(/^context\.runId is not a valid run id$/),
  },
  {
    name: 'a workflow node run whose url is a number',
    runId: 'wfnr_url_number',
    topic: 'runs',
    value: (context, id) => {
      const message = nodeRunMessage({ runId: id, url: 'unused' });
      (message.payload as { action: { invocationMethod: Record<string, unknown> } }).action.invocationMethod.url = 42;
      return signed(message, context.secret);
    },
    expect: () => ({ ...dropped(/^invocationMethod\.url must be a string \(got number\)$/), report: { kind: 'node-failed' } }),
  },
  refusedScheme('a file: URL', 'r_scheme_file', () => 'file:///etc/passwd', 'file:'),
  refusedScheme('an ftp: URL', 'r_scheme_ftp', (context) => `ftp://${context.trap}/pub/file`, 'ftp:'),
  refusedScheme('a data: URL', 'r_scheme_data', () => 'data:text/plain;base64,aGVsbG8=', 'data:'),
  refusedScheme('a javascript: URL', 'r_scheme_javascript', () => 'javascript:alert(document.cookie)', 'javascript:'),
  refusedScheme('a gopher: URL', 'r_scheme_gopher', (context) => `gopher://${context.trap}/1`, 'gopher:'),
  refusedScheme('a ws: URL', 'r_scheme_ws', (context) => `ws://${context.trap}/socket`, 'ws:'),
  {
    name: 'a workflow node run with a file: URL',
    runId: 'wfnr_scheme_file',
    topic: 'runs',
    value: (context, id) => signed(nodeRunMessage({ runId: id, url: 'file:///etc/shadow' }), context.secret),
    expect: () => ({ level: 'error', msg: 'run failed: the request could not be delivered', detail: /^invalid URL: the scheme file: is not allowed/, report: { kind: 'node-failed' } }),
  },
  {
    name: 'a change-log event with an ftp: URL (logged; change-log events are never reported)',
    topic: 'changelog',
    value: (context) => JSON.stringify(changelogMessage({ url: `ftp://${context.trap}/changes` })),
    expect: () => ({ level: 'error', msg: 'run failed: the request could not be delivered', detail: /^invalid URL: the scheme ftp: is not allowed/, report: { kind: 'none' } }),
  },
];

interface Produced {
  hostile: HostileCase;
  topic: string;
  partition: number;
  offset: string;
}

async function produceOne(producer: Producer, topic: string, value: string | Buffer, partition: number): Promise<{ partition: number; offset: string }> {
  const [metadata] = await producer.send({ topic, acks: -1, messages: [{ value, partition }] });
  assert.ok(metadata, 'the broker acknowledged the message');
  return { partition: metadata.partition, offset: metadata.baseOffset ?? '' };
}

describe('hostile input', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  let trap: CountingListener;
  let producer: Producer;

  before(async () => {
    ({ broker, port, target } = await startRealParts());
    trap = await listenCountingConnections();
    producer = await createProducer(broker.brokers);
  });

  after(async () => {
    await producer?.disconnect();
    trap?.server.close();
    await closeRealParts({ target, port, broker });
  });

  for (const dialect of ['jsonata', 'jq'] as const) {
    describe(`with ${dialect} mappings`, () => {
      let agent: AgentProcess;
      let setup: AgentSetup;
      const produced: Produced[] = [];
      const validRunIds: string[] = [];
      let validRunsMs = 0;

      const runId = (name: string): string => `${name}_${dialect === 'jsonata' ? 'ja' : 'jq'}`;
      const idOf = (hostile: HostileCase): string => runId(hostile.runId ?? 'r_none');
      const lineFor = (entry: Produced): AgentLogLine | undefined => {
        const expected = entry.hostile.expect(dialect, idOf(entry.hostile));
        return agent.logs.find((line) => line.topic === entry.topic && line.partition === entry.partition && line.offset === entry.offset && line.msg === expected.msg);
      };
      const isReported = (entry: Produced): boolean => {
        const expected = entry.hostile.expect(dialect, idOf(entry.hostile));
        const id = entry.hostile.runId === undefined ? undefined : runId(entry.hostile.runId);
        if (id === undefined) return true;
        switch (expected.report.kind) {
          case 'failure':
            return port.actionRunPatches(id).length > 0;
          case 'node-failed':
            return port.nodeRunPatches(id).length > 0;
          case 'finished':
            return port.actionRunLogs(id).includes(RUN_LOG.actionFinished);
          case 'none':
            return true;
        }
      };

      before(async () => {
        let cwd: string | undefined;
        const extra: Record<string, string> = { WEBHOOK_MAX_RETRIES: '0' };
        if (dialect === 'jq') {
          cwd = mkdtempSync(join(tmpdir(), 'hostile-jq-'));
          writeFileSync(join(cwd, 'control_the_payload_config.json'), OFFICIAL_JQ_DEFAULT);
          extra.CONTROL_THE_PAYLOAD_DIALECT = 'jq';
        }
        setup = agentSetup(broker, port, extra);
        // Create both topics before the agent subscribes, so it is assigned their partitions at once.
        const { value: warmRun } = { value: signed(actionRunMessage({ runId: runId('r_warmup'), url: `${target.url}/warmup` }), port.clientSecret) };
        await produceOne(producer, setup.runsTopic, warmRun, 3);
        await produceOne(producer, setup.changeLogTopic, JSON.stringify(changelogMessage({ url: `${target.url}/warmup` })), 3);
        agent = await startConsumingAgent(setup, cwd === undefined ? {} : { cwd });
        await waitFor(() => port.actionRunLogs(runId('r_warmup')).includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the warm-up run' });

        const context: CaseContext = { secret: port.clientSecret, target: target.url, trap: trap.address };
        for (const hostile of CASES) {
          const value = hostile.value(context, idOf(hostile));
          const topic = hostile.topic === 'runs' ? setup.runsTopic : setup.changeLogTopic;
          const { partition, offset } = await produceOne(producer, topic, value, hostile.partition ?? 0);
          produced.push({ hostile, topic, partition, offset });
        }

        // Valid runs behind the hostile ones, on every partition (partition 0 holds all the small hostile messages).
        const startedAt = Date.now();
        const messages = Array.from({ length: VALID_RUNS_BEHIND }, (_, index) => {
          const id = runId(`r_valid_${index}`);
          validRunIds.push(id);
          return { value: signed(actionRunMessage({ runId: id, url: `${target.url}/valid/${id}` }), port.clientSecret), partition: index % 4 };
        });
        await producer.send({ topic: setup.runsTopic, acks: -1, messages });
        const missing = (): string[] => [
          ...validRunIds.filter((id) => !port.actionRunLogs(id).includes(RUN_LOG.actionFinished)),
          ...produced.filter((entry) => lineFor(entry) === undefined || !isReported(entry)).map((entry) => entry.hostile.name),
        ];
        await waitFor(() => missing().length === 0, {
          timeoutMs: VALID_RUNS_BOUND_MS,
          description: () => `every valid run finished and every hostile message handled; missing: ${missing().slice(0, 10).join(', ')}; last lines:\n${agent.logs.slice(-10).map((line) => JSON.stringify(line).slice(0, 400)).join('\n')}`,
        });
        validRunsMs = Date.now() - startedAt;
      });

      after(async () => {
        await agent?.stop();
      });

      it(`delivers the ${VALID_RUNS_BEHIND} valid runs behind the hostile messages promptly`, (t) => {
        t.diagnostic(`${VALID_RUNS_BEHIND} valid runs handled in ${validRunsMs} ms after the hostile messages`);
        assert.ok(validRunsMs < VALID_RUNS_BOUND_MS);
        for (const id of validRunIds) assert.equal(target.requests.filter((request) => request.path === `/valid/${id}`).length, 1, id);
        assert.ok(!agent.logs.some((line) => line.msg === 'message handling failed unexpectedly'), 'no message took the unexpected-failure path');
        assert.ok(!agent.logs.some((line) => /jq stopped/.test(String(line.err ?? ''))), 'the jq process never stopped');
      });

      for (const hostile of CASES) {
        const expected = hostile.expect(dialect, idOf(hostile));
        it(`${hostile.name}: ${expected.msg}${hostile.runId ? `, report ${expected.report.kind}` : ''}`, () => {
          const entry = produced.find((candidate) => candidate.hostile === hostile);
          assert.ok(entry);
          const line = lineFor(entry);
          assert.ok(line, 'a log line with the topic, partition and offset');
          assert.equal(line.level, expected.level);
          assert.equal(typeof line.offset, 'string');
          if (expected.detail) assert.match(String(line.err ?? line.reason), expected.detail);
          const id = hostile.runId === undefined ? undefined : runId(hostile.runId);
          if (id !== undefined && expected.report.kind !== 'none') assert.equal(line.runId, id, 'the line names the run');
          if (id !== undefined) {
            switch (expected.report.kind) {
              case 'failure': {
                const patches = port.actionRunPatches(id) as { status: string; summary: string }[];
                assert.equal(patches.length, 1, 'one status report');
                assert.equal(patches[0]?.status, 'FAILURE');
                assert.match(patches[0]?.summary ?? '', expected.report.summary);
                assert.ok(port.actionRunLogs(id).includes(patches[0]?.summary ?? ''), 'the summary is a run log line too');
                break;
              }
              case 'node-failed':
                assert.deepEqual(port.nodeRunPatches(id), [{ status: 'COMPLETED', result: 'FAILED' }]);
                break;
              case 'finished':
                assert.ok(port.actionRunLogs(id).includes(RUN_LOG.actionFinished));
                break;
              case 'none':
                assert.deepEqual(port.apiCallsForRun(id), [], 'nothing reported for a message that is not for an agent');
                break;
            }
          }
          if (expected.report.kind !== 'finished' && id !== undefined) {
            assert.equal(target.requests.filter((request) => request.path.endsWith(`/${id}`)).length, 0, 'nothing sent');
          }
        });
      }

      it('sends nothing to a non-http(s) URL and makes no Port call with a path from a message', () => {
        assert.equal(trap.connections(), 0, 'no connection to the ftp:, gopher: or ws: host');
        assert.ok(!port.calls.some((call) => call.path.includes('..') || call.path.includes('organization/')), 'no run id used as a path');
      });
    });
  }
});
