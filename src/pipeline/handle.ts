/**
 * Runs the stages for one message — parse, classify, verify, map, deliver, report — and says how
 * it ended so the source can commit. It never throws: whatever happens to one message must not
 * block its partition (SPEC §2), and a run the agent accepted always gets a final report (SPEC §7).
 */
import type { Deliverer, DeliveryResult } from '../delivery/send.js';
import { traceContextFor } from '../delivery/trace-context.js';
import { MappingError, describeError } from '../errors.js';
import type { MessageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Mapper } from '../mapping/render.js';
import type { CompiledMapping, RequestSpec } from '../mapping/types.js';
import { decryptFields, withoutDecryptedValues } from '../message/decrypt.js';
import { runKindOf } from '../message/invocation.js';
import type { InvocationKind, InvocationMethod, Message } from '../message/invocation.js';
import { prepareMessage } from '../message/prepare.js';
import type { Prepared } from '../message/prepare.js';
import type { Reporter, RunRef, RunReports } from '../reporting/reporter.js';
import { displayUrl, failureSummary } from '../reporting/summary.js';
import { isSuccessStatus } from '../shared/service-response.js';
import type { HandleOutcome, MessageHandler, SourceMessage, TopicRole } from '../shared/source-message.js';

/** Polling cannot split runs between agents: the claim already gave the run to this one. */
const UNMATCHED_CLAIMED_RUN_SUMMARY =
  'The agent found no payload mapping for this action run. It was claimed through Port\'s polling API, so no other agent will handle it.';

export interface HandlerDeps {
  mapper: Mapper;
  deliverer: Deliverer;
  reporter: Reporter;
  logger: Logger;
  /** HMAC key of incoming signatures. */
  secret: string;
  /** AGENT_SKIP_UNMATCHED_NODE_RUNS: no matching mapping skips a node run instead of failing it. */
  skipUnmatchedNodeRuns: boolean;
  /** AES key of `fieldsToDecryptPaths`; undefined when the client secret is too short for one. */
  decryptionKey: Buffer | undefined;
  /** AGENT_MAX_MESSAGE_BYTES: larger messages are refused unread (FAILURE when a run id shows). */
  maxMessageBytes: number;
  /** AGENT_MAX_MESSAGE_AGE_SECONDS: signed messages older than this are dropped (replay window). */
  maxMessageAgeMs?: number | undefined;
  now?: () => number;
}

/** The run a message was trusted to be, and its report queue once opened. */
interface Accepted {
  run?: RunRef | undefined;
  reports?: RunReports;
}

function runRefFor(kind: InvocationKind, runId: string | undefined, synchronized: boolean): RunRef | undefined {
  if (kind === 'changelog' || runId === undefined) return undefined;
  return { kind, runId, synchronized };
}

export function createMessageHandler(deps: HandlerDeps): MessageHandler {
  const { mapper, deliverer, reporter, secret } = deps;
  const now = deps.now ?? Date.now;

  /** The final report of a failed run, in the run's report queue (opened here if need be). */
  function reportFailure(accepted: Accepted, run: RunRef, summary: string, logger: Logger): void {
    accepted.reports ??= reporter.open(run, logger);
    accepted.reports.failed(summary);
  }

  /**
   * A message we cannot read: log with its location, and report FAILURE when a run id is visible.
   * `logger` is the message's, without a run id: the one the error found is added here.
   */
  function unreadable(error: MessageError, role: TopicRole, logger: Logger, accepted: Accepted): HandleOutcome {
    const runId = error.runId;
    const runLogger = runId === undefined ? logger : logger.child({ runId });
    runLogger.warn({ err: error.message }, 'message dropped: it cannot be read');
    if (role === 'runs' && runId !== undefined) {
      const run: RunRef = { kind: runKindOf(runId), runId, synchronized: false };
      reportFailure(accepted, run, failureSummary(error), runLogger);
      return 'failed';
    }
    return 'dropped';
  }

  /** A message prepared but refused: log why, and fail a node run Port waits on. */
  function refused(prepared: Extract<Prepared, { kind: 'drop' }>, logger: Logger, accepted: Accepted): HandleOutcome {
    const { refusal, runId, invocationKind } = prepared;
    if (refusal.reason === 'no-value') {
      logger.warn('message dropped: it has no value');
      return 'dropped';
    }
    const { traceId } = traceContextFor(prepared.traceparent);
    const runLogger = logger.child(runId === undefined ? { traceId } : { runId, traceId });
    if (refusal.reason === 'too-old') {
      const { ageMs, maxAgeMs } = refusal;
      runLogger.warn({ ageSeconds: ageMs === undefined ? undefined : Math.round(ageMs / 1000), maxAgeSeconds: maxAgeMs / 1000 }, 'message dropped: older than AGENT_MAX_MESSAGE_AGE_SECONDS');
      return 'dropped';
    }
    runLogger.warn({ reason: refusal.signatureFailure }, 'message dropped: invalid signature');
    // The run id cannot be trusted, but Port waits on a node run; the reference fails it too.
    if (invocationKind === 'node-run' && runId !== undefined) {
      reportFailure(accepted, { kind: 'node-run', runId, synchronized: false }, 'The agent rejected the message: its signature is invalid.', runLogger);
    }
    return 'dropped';
  }

  /**
   * `accepted` receives the run once it is trusted, and its reports once opened, so an unexpected
   * failure can still be reported.
   */
  async function process(message: SourceMessage, logger: Logger, accepted: Accepted): Promise<HandleOutcome> {
    const prepared = prepareMessage(message.value, {
      role: message.role,
      claimed: message.origin === 'claimed',
      verify: message.origin === 'kafka' ? { secret, maxMessageAgeMs: deps.maxMessageAgeMs, nowMs: now() } : undefined,
      maxMessageBytes: deps.maxMessageBytes,
      place: `${message.topic}-${message.partition}-${message.offset}`,
    });
    if (prepared.kind === 'unreadable') return unreadable(prepared.error, message.role, logger, accepted);
    if (prepared.kind === 'skip') {
      const skipLogger = prepared.runId === undefined ? logger : logger.child({ runId: prepared.runId });
      skipLogger.info({ reason: prepared.reason }, 'message skipped: not for an agent');
      return 'skipped';
    }
    // Issue 6: the run's trace continues one that came with the message (record header first).
    if (prepared.kind === 'drop') return refused({ ...prepared, traceparent: message.traceparent ?? prepared.traceparent }, logger, accepted);
    const { invocationKind, runId, invocationMethod } = prepared;
    const trace = traceContextFor(message.traceparent ?? prepared.traceparent);
    const runLogger = logger.child(runId === undefined ? { traceId: trace.traceId } : { runId, traceId: trace.traceId });
    const run = runRefFor(invocationKind, runId, invocationMethod.synchronized);
    accepted.run = run;
    return deliverInvocation(prepared.body, invocationKind, invocationMethod, accepted, { idempotencyKey: prepared.idempotencyKey, traceparent: trace.traceparent, claimed: message.origin === 'claimed' }, runLogger);
  }

  function decryptForMapping(message: Message, paths: readonly string[], logger: Logger, onDecrypted: (plaintext: string) => void): Message {
    if (paths.length === 0) return message;
    // The agent refuses to start when a mapping decrypts and the secret cannot make a key.
    if (!deps.decryptionKey) throw new Error('fieldsToDecryptPaths needs a client secret of at least 32 bytes');
    return decryptFields(message, paths, deps.decryptionKey, ({ path, reason }) => {
      // Never the value, encrypted or not.
      logger.warn({ path, reason }, 'field left as it was: it could not be decrypted');
    }, onDecrypted);
  }

  /** No mapping matches: fail what Port waits on (a node run, a claimed run), skip the rest silently. */
  function unmatched(accepted: Accepted, claimed: boolean, logger: Logger): HandleOutcome {
    const { run } = accepted;
    if (run?.kind === 'node-run' && !deps.skipUnmatchedNodeRuns) {
      logger.warn('node run failed: no payload mapping matches it');
      reportFailure(accepted, run, 'The agent found no payload mapping for this workflow node run.', logger);
      return 'failed';
    }
    if (run?.kind === 'action-run' && claimed) {
      // Claimed and acknowledged: Port shows it to no other agent, so silence would leave it in progress.
      logger.warn('action run failed: no payload mapping matches it, and a claimed run is no other agent\'s');
      reportFailure(accepted, run, UNMATCHED_CLAIMED_RUN_SUMMARY, logger);
      return 'failed';
    }
    // Silence, so several agents can split runs between them with `enabled` filters.
    logger.info('message skipped: no payload mapping matches it');
    return 'skipped';
  }

  /** The delivery's result logged and reported, with the report fields the mapping renders from the response. */
  async function concluded(
    result: DeliveryResult,
    sent: { mapping: CompiledMapping; rendered: Message; request: RequestSpec; reports: RunReports | undefined },
    requestLogger: Logger,
    hide: (text: string) => string,
  ): Promise<HandleOutcome> {
    const { reports } = sent;
    if (result.kind === 'failure') {
      const summary = hide(failureSummary(result.error));
      requestLogger.error({ attempt: result.attempts, durationMs: result.durationMs, err: hide(result.error.message) }, 'run failed: the request could not be delivered');
      reports?.failed(summary);
      return 'failed';
    }
    const { response } = result;
    const succeeded = isSuccessStatus(response.status);
    const fields = { status: response.status, attempt: result.attempts, durationMs: result.durationMs };
    if (succeeded) requestLogger.info(fields, 'request delivered');
    else requestLogger.error(fields, 'run failed: the service answered with an error status');
    if (reports) {
      const overrides = await mapper.renderReport(sent.mapping, {
        body: sent.rendered,
        request: sent.request,
        response: { statusCode: response.status, headers: response.headersAsSent, text: response.text, json: response.json ?? null },
      });
      reports.responded(response, overrides);
    }
    return succeeded ? 'delivered' : 'failed';
  }

  async function deliverInvocation(
    body: Message,
    kind: InvocationKind,
    invocationMethod: InvocationMethod,
    accepted: Accepted,
    sent: { idempotencyKey: string; traceparent: string; claimed: boolean },
    logger: Logger,
  ): Promise<HandleOutcome> {
    const { run } = accepted;
    // SPEC §9: decrypted values never reach a log line or a summary, though an expression's error
    // may quote one and a URL rendered from one shows it.
    const decrypted: string[] = [];
    const hide = (text: string): string => withoutDecryptedValues(text, decrypted);
    try {
      const mapping = await mapper.select(body);
      if (mapping === undefined) return unmatched(accepted, sent.claimed, logger);

      // Reports are queued, never awaited here: no Port round trip stands before the request.
      const reports = run ? reporter.open(run, logger) : undefined;
      accepted.reports = reports;
      reports?.received();
      reports?.preparing();
      // SPEC §5: chosen on the message as received, then decrypted, then rendered.
      const rendered = decryptForMapping(body, mapping.fieldsToDecryptPaths, logger, (plaintext) => decrypted.push(plaintext));
      const request = await mapper.renderRequest(mapping, rendered, {
        url: invocationMethod.url,
        method: invocationMethod.method ?? 'POST',
        body: rendered,
        headers: invocationMethod.headers,
      });
      const shownUrl = hide(displayUrl(request.url));
      const requestLogger = logger.child({ url: shownUrl, method: request.method });
      reports?.sending({ method: request.method, url: shownUrl });
      const result = await deliverer.deliver(request, {
        logger: requestLogger,
        idempotencyKey: sent.idempotencyKey,
        traceparent: sent.traceparent,
        onRetry: reports ? (notice) => reports.retrying(notice) : undefined,
      });

      return await concluded(result, { mapping, rendered, request, reports }, requestLogger, hide);
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      logger.error({ mappingIndex: error.mappingIndex, field: error.field, err: hide(error.message) }, 'run failed: the payload mapping failed');
      if (run) reportFailure(accepted, run, hide(failureSummary(error)), logger);
      return 'failed';
    }
  }

  return async (message) => {
    const logger = deps.logger.child({ topic: message.topic, partition: message.partition, offset: message.offset });
    const accepted: Accepted = {};
    let outcome: HandleOutcome;
    try {
      outcome = await process(message, logger, accepted);
    } catch (error) {
      // A defect in the agent: log everything, never block the partition on it, and never leave
      // an accepted run in progress (SPEC §7).
      logger.error({ runId: accepted.run?.runId, err: describeError(error), stack: error instanceof Error ? error.stack : undefined }, 'message handling failed unexpectedly');
      if (accepted.run) reportFailure(accepted, accepted.run, failureSummary(error), logger.child({ runId: accepted.run.runId }));
      outcome = 'failed';
    }
    // The message may be committed once Port has the run's final report (or refused it for good).
    return { outcome, reported: accepted.reports?.settled() };
  };
}
