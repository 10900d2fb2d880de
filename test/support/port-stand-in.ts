import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Every route of the Port API the agent calls (SPEC §2, §7, §8), as `METHOD /template`. */
export const PORT_ROUTES = [
  'POST /v1/auth/access_token',
  'GET /v1/kafka-credentials',
  'PATCH /v1/organization',
  // The literal routes come before `/v1/actions/runs/:runId`, which would match them too.
  'POST /v1/actions/runs/claim-pending',
  'PATCH /v1/actions/runs/ack',
  'POST /v1/actions/runs/:runId/logs',
  'PATCH /v1/actions/runs/:runId/response',
  'PATCH /v1/actions/runs/:runId',
  'POST /v1/workflows/runs/claim-pending',
  'PATCH /v1/workflows/runs/ack',
  'POST /v1/workflows/nodes/runs/:id/logs',
  'PATCH /v1/workflows/nodes/runs/:id',
] as const;

export type PortRoute = (typeof PORT_ROUTES)[number];

/** One HTTP call the stand-in received. */
export interface RecordedCall {
  method: string;
  /** The path without the query string. */
  path: string;
  /** The matched route template, e.g. `PATCH /v1/actions/runs/:runId`; undefined for an unknown route. */
  route: PortRoute | undefined;
  /** Path parameters of the matched route (`runId`, `id`). */
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; the raw text when it is not JSON; undefined when empty or too large. */
  body: unknown;
  /** The size of the body received, in bytes (past `maxBodyBytes` too: the body is read, not kept). */
  bodyBytes: number;
  /** Whether the call carried `x-port-reserved-usage: true` (SPEC §8: claim and ack calls). */
  hasReservedUsageHeader: boolean;
  /** When the request was received (ms since the epoch). */
  at: number;
  /**
   * The status Port answered, set when Port decided it: with an answer delay the client gets it
   * only at `answeredAt`. Undefined for a call never answered (a hanging one).
   */
  status: number | undefined;
  /**
   * When the answer was written (ms since the epoch): `at` plus the answer delay. Undefined while
   * it is delayed, and for good when it never is (a hanging call, a client gone, close()).
   */
  answeredAt: number | undefined;
}

/** How to fail a call: a status (429 with `retryAfterSeconds`, 5xx, …) or no answer at all. */
export type InjectedFailure = { status: number; retryAfterSeconds?: number; body?: unknown } | { hang: true };

/** Options of {@link PortStandIn.failFor}. */
export interface FailForOptions {
  /** Routes answered as usual during the window, e.g. `['POST /v1/auth/access_token']`. */
  except?: readonly PortRoute[];
  /**
   * Opens the window at the next call of this route (the first call to fail) instead of now: an
   * outage that begins at a chosen moment of the agent's work, e.g. while it reports a status.
   */
  startingWith?: PortRoute;
}

/**
 * Port's rate limit, e.g. `{ limit: 15000, periodSeconds: 300 }` for "15,000 calls per 5 minutes":
 * fixed windows of `periodSeconds` aligned to multiples of the period since the epoch, counting
 * every call of every route (the token route and unknown paths too) that the limit did not refuse.
 */
export interface RateLimit {
  /** Calls accepted per window; the next ones get 429 until the window ends. */
  limit: number;
  periodSeconds: number;
  /**
   * What `x-ratelimit-reset` holds: seconds until the window ends (`'seconds'`, the default) or
   * the window's end as UTC epoch seconds (`'epoch'`); both rounded up.
   */
  resetFormat?: 'seconds' | 'epoch';
  /** Whether a 429 carries `retry-after` (seconds until the window ends, rounded up). */
  retryAfter?: boolean;
}

/** One accepted `POST /v1/actions/runs/:runId/logs` call: its line and the status it may set. */
export interface ActionRunLogCall {
  message: string;
  terminationStatus?: string;
  statusLabel?: string;
}

/** Decides the `ackedCount` of one action run id; `previousAcks` counts earlier acks of it. */
export type ActionRunAckAnswer = (runId: string, previousAcks: number, wasClaimed: boolean) => number;
/** Decides `acked` for one node run identifier. */
export type NodeRunAckAnswer = (nodeRunId: string, previousAcks: number, wasClaimed: boolean) => boolean;

export interface KafkaCredentials {
  brokers: string[];
  username: string;
  password: string;
}

export interface PortStandInOptions {
  clientId?: string;
  clientSecret?: string;
  /** `expiresIn` of issued tokens; they stop being accepted after it. */
  tokenTtlSeconds?: number;
  kafkaCredentials?: KafkaCredentials;
  actionRunAck?: ActionRunAckAnswer;
  nodeRunAck?: NodeRunAckAnswer;
  /** Port's rate limit; none by default. See {@link PortStandIn.setRateLimit}. */
  rateLimit?: RateLimit;
  /** Ms between reading a request's body and writing its answer: Port far away. 0 by default. */
  answerDelayMs?: number;
  /** Request bodies larger than this get 413 on every route; 1 MiB by default, as on Port. */
  maxBodyBytes?: number;
}

/** A local stand-in for the Port API: real HTTP on loopback, recording every call. */
export interface PortStandIn {
  /** Base URL, no trailing slash (for `PORT_API_BASE_URL`). */
  url: string;
  clientId: string;
  clientSecret: string;
  calls: RecordedCall[];
  /**
   * Calls received, hanging ones included, and how many got each status (`'429'` → count) among
   * the calls Port answered (or is about to, with an answer delay).
   */
  summary(): { calls: number; byStatus: Record<string, number> };
  /** Calls to the token route, answered or not. */
  tokenRequests(): number;
  /** Every call of a route (including failed ones), in order. */
  callsTo(route: PortRoute): RecordedCall[];
  /** Every call addressed to one run or node run id, in order. */
  apiCallsForRun(runId: string): RecordedCall[];
  /** Run log messages Port accepted for an action run, in order. */
  actionRunLogs(runId: string): string[];
  /** Accepted run log calls of an action run, with the status fields they carried, in order. */
  actionRunLogCalls(runId: string): ActionRunLogCall[];
  /**
   * Every change Port accepted for an action run, in the order the calls were received: the body
   * of each accepted `PATCH /v1/actions/runs/:runId` and, for each accepted log call carrying a
   * `terminationStatus`, `{ status: terminationStatus }` (plus its `statusLabel`, when given).
   */
  actionRunPatches(runId: string): unknown[];
  /** The last status Port accepted for an action run, by a status patch or a log line. */
  actionRunStatus(runId: string): string | undefined;
  /** The `response` fields of accepted `PATCH /v1/actions/runs/:runId/response` calls. */
  actionRunResponses(runId: string): unknown[];
  /** Log messages Port accepted for a workflow node run, in order. */
  nodeRunLogs(id: string): string[];
  /** Bodies of accepted `PATCH /v1/workflows/nodes/runs/:id` calls. */
  nodeRunPatches(id: string): unknown[];
  /** Queues action runs for `POST /v1/actions/runs/claim-pending` (each needs an `id`). */
  enqueueActionRuns(runs: Record<string, unknown>[]): void;
  /** Queues node runs for `POST /v1/workflows/runs/claim-pending` (each needs an `identifier`). */
  enqueueNodeRuns(nodeRuns: Record<string, unknown>[]): void;
  /** The next `count` calls of `route` get `failure` instead of their answer. */
  failNext(route: PortRoute, count: number, failure: InjectedFailure): void;
  /**
   * For the next `durationMs` (from now, or from the next call of `options.startingWith`), every
   * call of every route not in `options.except` gets `failure`: an outage in time rather than in
   * calls. A failure queued by {@link failNext} still comes first. A new window replaces the
   * current one.
   */
  failFor(durationMs: number, failure: InjectedFailure, options?: FailForOptions): void;
  /**
   * Sets Port's rate limit (see {@link RateLimit}), or removes it with undefined. Calls are counted
   * afresh from now. While one is set, every answer carries `x-ratelimit-limit`,
   * `x-ratelimit-remaining` (calls left in the window after this one), `x-ratelimit-reset` and
   * `x-ratelimit-period`; a call past the limit gets 429 `rate_limit_exceeded`. Injected failures
   * come first: they carry the headers but neither count nor get refused.
   */
  setRateLimit(rateLimit: RateLimit | undefined): void;
  /** Calls answered 429 by the rate limit (not by injected failures). */
  rateLimitedCalls(): number;
  /** Delays every later answer, whatever its status, to `ms` after its request's body was read. */
  setAnswerDelay(ms: number): void;
  /** Calls answered 413 because their body was larger than `maxBodyBytes`. */
  refusedAsTooLarge(): number;
  /** Invalidates every issued token: the next call with one gets 401. */
  expireTokens(): void;
  setKafkaCredentials(credentials: KafkaCredentials): void;
  setAckAnswers(answers: { actionRun?: ActionRunAckAnswer; nodeRun?: NodeRunAckAnswer }): void;
  /** Connections open to it now (a client's idle keep-alive connections count). */
  openConnections(): Promise<number>;
  /** Stops the server, dropping delayed answers and ending hanging calls and open connections. */
  close(): Promise<void>;
}

interface Reply {
  status: number;
  body: unknown;
}

interface RouteMatch {
  route: PortRoute;
  params: Record<string, string>;
}

const DEFAULT_CLIENT_ID = 'test-client-id';
const DEFAULT_CLIENT_SECRET = 'test-client-secret';
const DEFAULT_TOKEN_TTL_SECONDS = 3600;
const DEFAULT_MAX_BODY_BYTES = 1_048_576;
const DEFAULT_KAFKA_CREDENTIALS: KafkaCredentials = {
  brokers: ['127.0.0.1:9092'],
  username: 'port-agent-user',
  password: 'port-agent-password',
};

// Port acknowledges a claimed run once; a second ack (another replica) gets nothing.
const defaultActionRunAck: ActionRunAckAnswer = (_runId, previousAcks, wasClaimed) =>
  wasClaimed && previousAcks === 0 ? 1 : 0;
const defaultNodeRunAck: NodeRunAckAnswer = (_id, previousAcks, wasClaimed) => wasClaimed && previousAcks === 0;

const UNAUTHORIZED: Reply = { status: 401, body: { ok: false, error: 'unauthorized' } };
const RATE_LIMITED: Reply = { status: 429, body: { ok: false, error: 'rate_limit_exceeded' } };
const TERMINATION_STATUSES: readonly unknown[] = ['SUCCESS', 'FAILURE'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): Reply {
  return { status: 422, body: { ok: false, error: 'invalid_request', message } };
}

/** `1MiB`, `64KiB` or `100 bytes`: how Port's 413 message names the limit. */
function sizeText(bytes: number): string {
  if (bytes > 0 && bytes % 1_048_576 === 0) return `${bytes / 1_048_576}MiB`;
  if (bytes > 0 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes} bytes`;
}

function tooLarge(maxBodyBytes: number): Reply {
  const message = `Request body is too large (limit is ${sizeText(maxBodyBytes)})`;
  return { status: 413, body: { ok: false, error: 'payload_too_large', message } };
}

/** What Port finds wrong with a run log line, if anything: the optional status fields are checked too. */
function runLogProblem(fields: Record<string, unknown>): string | undefined {
  if (typeof fields.message !== 'string') return 'message must be a string';
  if ('terminationStatus' in fields && !TERMINATION_STATUSES.includes(fields.terminationStatus)) {
    return 'terminationStatus must be SUCCESS or FAILURE';
  }
  if ('statusLabel' in fields && typeof fields.statusLabel !== 'string') return 'statusLabel must be a string';
  return undefined;
}

function checkRateLimit(rateLimit: RateLimit | undefined): void {
  if (rateLimit === undefined) return;
  const { limit, periodSeconds, resetFormat = 'seconds' } = rateLimit;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new Error(`Expected \`limit\` to be a non-negative integer (actual: ${String(limit)}).`);
  }
  if (!Number.isFinite(periodSeconds) || periodSeconds <= 0) {
    throw new Error(`Expected \`periodSeconds\` to be a positive number (actual: ${String(periodSeconds)}).`);
  }
  if (resetFormat !== 'seconds' && resetFormat !== 'epoch') {
    throw new Error(`Expected \`resetFormat\` to be 'seconds' or 'epoch' (actual: ${String(resetFormat)}).`);
  }
}

function checkNonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`Expected \`${name}\` to be a non-negative number (actual: ${String(value)}).`);
  }
}

const COMPILED_ROUTES = PORT_ROUTES.map((route) => {
  const [method = '', template = ''] = route.split(' ');
  return { route, method, segments: template.split('/') };
});

function matchRoute(method: string, path: string): RouteMatch | undefined {
  const segments = path.split('/');
  for (const candidate of COMPILED_ROUTES) {
    if (candidate.method !== method || candidate.segments.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const isMatch = candidate.segments.every((expected, index) => {
      const actual = segments[index] ?? '';
      if (expected.startsWith(':')) {
        params[expected.slice(1)] = decodeURIComponent(actual);
        return actual.length > 0;
      }
      return expected === actual;
    });
    if (isMatch) return { route: candidate.route, params };
  }
  return undefined;
}

/**
 * Reads the whole body, keeping it only up to `maxBytes`: a body past the limit is refused
 * unparsed, but read to its end so that the client, still sending, reads the 413 rather than a reset.
 */
async function readBody(request: IncomingMessage, maxBytes: number): Promise<{ body: unknown; bytes: number }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request) {
    bytes += (chunk as Buffer).length;
    if (bytes <= maxBytes) chunks.push(chunk as Buffer);
  }
  if (bytes > maxBytes) return { body: undefined, bytes };
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.length === 0) return { body: undefined, bytes };
  try {
    return { body: JSON.parse(text) as unknown, bytes };
  } catch {
    return { body: text, bytes };
  }
}

/** Starts the Port API stand-in on a free loopback port. */
export async function startPortStandIn(options: PortStandInOptions = {}): Promise<PortStandIn> {
  const {
    clientId = DEFAULT_CLIENT_ID,
    clientSecret = DEFAULT_CLIENT_SECRET,
    tokenTtlSeconds = DEFAULT_TOKEN_TTL_SECONDS,
    maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  } = options;
  checkRateLimit(options.rateLimit);
  checkNonNegative('answerDelayMs', options.answerDelayMs ?? 0);
  checkNonNegative('maxBodyBytes', maxBodyBytes);
  let rateLimit = options.rateLimit;
  let answerDelayMs = options.answerDelayMs ?? 0;
  let kafkaCredentials = options.kafkaCredentials ?? DEFAULT_KAFKA_CREDENTIALS;
  let actionRunAck = options.actionRunAck ?? defaultActionRunAck;
  let nodeRunAck = options.nodeRunAck ?? defaultNodeRunAck;

  const calls: RecordedCall[] = [];
  const tokens = new Map<string, number>(); // token -> expiry (ms since the epoch)
  const failures = new Map<PortRoute, InjectedFailure[]>();
  const pendingActionRuns: Record<string, unknown>[] = [];
  const pendingNodeRuns: Record<string, unknown>[] = [];
  const claimedIds = new Set<string>();
  const ackCounts = new Map<string, number>();
  /** The calls counted in the current rate limit window; `startMs` -1 until the first one. */
  let rateWindow = { startMs: -1, used: 0 };
  let rateLimitedCount = 0;
  let tooLargeCount = 0;
  /** Timers of delayed answers, cleared by close(). */
  const delayedAnswers = new Set<NodeJS.Timeout>();
  let closed = false;
  /** The outage set by failFor(); `untilMs` is undefined until its `startingWith` call arrives. */
  let failureWindow:
    | { durationMs: number; untilMs: number | undefined; startingWith: PortRoute | undefined; failure: InjectedFailure; except: ReadonlySet<PortRoute> }
    | undefined;

  const windowFailure = (route: PortRoute): InjectedFailure | undefined => {
    if (failureWindow === undefined || failureWindow.except.has(route)) return undefined;
    if (failureWindow.untilMs === undefined) {
      if (route !== failureWindow.startingWith) return undefined;
      failureWindow.untilMs = Date.now() + failureWindow.durationMs;
    }
    return Date.now() < failureWindow.untilMs ? failureWindow.failure : undefined;
  };

  /** The rate limit window `now` falls in, counted afresh when it is a new one. */
  const currentWindow = (limit: RateLimit, now: number): { endMs: number } => {
    const periodMs = limit.periodSeconds * 1000;
    const startMs = Math.floor(now / periodMs) * periodMs;
    if (startMs !== rateWindow.startMs) rateWindow = { startMs, used: 0 };
    return { endMs: startMs + periodMs };
  };

  const rateLimitHeaders = (limit: RateLimit, endMs: number, now: number): Record<string, string> => ({
    'x-ratelimit-limit': String(limit.limit),
    'x-ratelimit-remaining': String(Math.max(0, limit.limit - rateWindow.used)),
    'x-ratelimit-reset': String(Math.ceil(limit.resetFormat === 'epoch' ? endMs / 1000 : (endMs - now) / 1000)),
    'x-ratelimit-period': String(limit.periodSeconds),
  });

  /** The rate limit headers of an answer that does not count towards the limit (an injected failure). */
  const uncountedHeaders = (now: number): Record<string, string> => {
    if (rateLimit === undefined) return {};
    return rateLimitHeaders(rateLimit, currentWindow(rateLimit, now).endMs, now);
  };

  /** Counts a call towards the rate limit, unless it is past it: then it is refused. */
  const countCall = (now: number): { refused: boolean; headers: Record<string, string> } => {
    if (rateLimit === undefined) return { refused: false, headers: {} };
    const { endMs } = currentWindow(rateLimit, now);
    const refused = rateWindow.used >= rateLimit.limit;
    if (!refused) rateWindow.used += 1;
    const headers = rateLimitHeaders(rateLimit, endMs, now);
    if (refused && rateLimit.retryAfter === true) headers['retry-after'] = String(Math.ceil((endMs - now) / 1000));
    return { refused, headers };
  };

  const isAuthorized = (headers: IncomingHttpHeaders): boolean => {
    const match = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '');
    const expiry = match?.[1] === undefined ? undefined : tokens.get(match[1]);
    return expiry !== undefined && expiry > Date.now();
  };

  const claim = (queue: Record<string, unknown>[], body: Record<string, unknown>): Record<string, unknown>[] => {
    const limit = typeof body.limit === 'number' && body.limit > 0 ? body.limit : queue.length;
    const claimed = queue.splice(0, limit);
    for (const run of claimed) {
      for (const field of ['id', 'identifier']) {
        const value = run[field];
        if (typeof value === 'string') claimedIds.add(value);
      }
    }
    return claimed;
  };

  const countAck = (id: string): { previousAcks: number; wasClaimed: boolean } => {
    const previousAcks = ackCounts.get(id) ?? 0;
    ackCounts.set(id, previousAcks + 1);
    return { previousAcks, wasClaimed: claimedIds.has(id) };
  };

  const handle = (route: PortRoute, params: Record<string, string>, body: unknown): Reply => {
    const fields = isRecord(body) ? body : {};
    switch (route) {
      case 'POST /v1/auth/access_token': {
        if (fields.clientId !== clientId || fields.clientSecret !== clientSecret) {
          return { status: 401, body: { ok: false, error: 'invalid_credentials' } };
        }
        const accessToken = randomBytes(24).toString('hex');
        tokens.set(accessToken, Date.now() + tokenTtlSeconds * 1000);
        return { status: 200, body: { accessToken, expiresIn: tokenTtlSeconds, tokenType: 'Bearer' } };
      }
      case 'GET /v1/kafka-credentials':
        return { status: 200, body: { ok: true, credentials: kafkaCredentials } };
      case 'PATCH /v1/organization': {
        const settings = fields.settings;
        if (!isRecord(settings) || typeof settings.portAgentStreamerName !== 'string') {
          return invalid('settings.portAgentStreamerName must be a string');
        }
        return { status: 200, body: { ok: true } };
      }
      case 'POST /v1/actions/runs/claim-pending':
        return { status: 200, body: { ok: true, runs: claim(pendingActionRuns, fields) } };
      case 'PATCH /v1/actions/runs/ack': {
        const runIds = fields.runIds;
        if (!Array.isArray(runIds) || !runIds.every((id) => typeof id === 'string')) {
          return invalid('runIds must be an array of strings');
        }
        let ackedCount = 0;
        for (const runId of runIds as string[]) {
          const { previousAcks, wasClaimed } = countAck(runId);
          ackedCount += actionRunAck(runId, previousAcks, wasClaimed);
        }
        return { status: 200, body: { ok: true, ackedCount } };
      }
      case 'POST /v1/actions/runs/:runId/logs': {
        const problem = runLogProblem(fields);
        if (problem !== undefined) return invalid(problem);
        return { status: 201, body: { ok: true, runLog: { runId: params.runId, message: fields.message } } };
      }
      case 'PATCH /v1/actions/runs/:runId/response':
        if (!('response' in fields)) return invalid('response is required');
        return { status: 200, body: { ok: true, run: { id: params.runId, response: fields.response } } };
      case 'PATCH /v1/actions/runs/:runId':
        return { status: 200, body: { ok: true, run: { id: params.runId, ...fields } } };
      case 'POST /v1/workflows/runs/claim-pending':
        return { status: 200, body: { ok: true, nodeRuns: claim(pendingNodeRuns, fields) } };
      case 'PATCH /v1/workflows/runs/ack': {
        const id = fields.nodeRunIdentifier;
        if (typeof id !== 'string') return invalid('nodeRunIdentifier must be a string');
        const { previousAcks, wasClaimed } = countAck(id);
        return { status: 200, body: { ok: true, acked: nodeRunAck(id, previousAcks, wasClaimed) } };
      }
      case 'POST /v1/workflows/nodes/runs/:id/logs': {
        const logs = fields.logs;
        if (!Array.isArray(logs) || !logs.every((log) => isRecord(log) && typeof log.message === 'string')) {
          return invalid('logs must be an array of {level, message}');
        }
        return { status: 201, body: { ok: true } };
      }
      case 'PATCH /v1/workflows/nodes/runs/:id':
        return { status: 200, body: { ok: true, nodeRun: { identifier: params.id, ...fields } } };
    }
  };

  /**
   * Runs `write` at `dueAt`. Timers may fire a little before `Date.now()` reaches it, hence the
   * check again on each turn: an answer is never early.
   */
  const whenDue = (dueAt: number, write: () => void): void => {
    const waitMs = dueAt - Date.now();
    if (waitMs <= 0) {
      write();
      return;
    }
    const timer = setTimeout(() => {
      delayedAnswers.delete(timer);
      whenDue(dueAt, write);
    }, waitMs);
    delayedAnswers.add(timer);
  };

  /** Port decides the answer now; it is written once the answer delay has passed since `call.at`. */
  const send = (response: ServerResponse, call: RecordedCall, reply: Reply, headers: Record<string, string> = {}): void => {
    call.status = reply.status;
    whenDue(call.at + answerDelayMs, () => {
      if (closed || response.destroyed) return; // the client gave up or the stand-in closed: nobody to answer
      call.answeredAt = Date.now();
      response.writeHead(reply.status, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify(reply.body));
    });
  };

  const server = createServer((request, response) => {
    void (async () => {
      const method = request.method ?? 'GET';
      const path = (request.url ?? '/').split('?')[0] ?? '/';
      const { body, bytes } = await readBody(request, maxBodyBytes);
      const match = matchRoute(method, path);
      const call: RecordedCall = {
        method,
        path,
        route: match?.route,
        params: match?.params ?? {},
        headers: request.headers,
        body,
        bodyBytes: bytes,
        hasReservedUsageHeader: request.headers['x-port-reserved-usage'] === 'true',
        at: Date.now(),
        status: undefined,
        answeredAt: undefined,
      };
      calls.push(call);

      // An injected failure is an outage in front of Port: not counted, nor refused, by the rate limit.
      const failure = match === undefined ? undefined : (failures.get(match.route)?.shift() ?? windowFailure(match.route));
      if (failure) {
        if ('hang' in failure) return; // answered never; close() destroys the socket
        const headers = uncountedHeaders(call.at);
        if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
        send(response, call, { status: failure.status, body: failure.body ?? { ok: false, error: 'injected_failure' } }, headers);
        return;
      }
      const { refused, headers } = countCall(call.at);
      if (refused) {
        rateLimitedCount += 1;
        send(response, call, RATE_LIMITED, headers);
        return;
      }
      if (bytes > maxBodyBytes) {
        tooLargeCount += 1;
        send(response, call, tooLarge(maxBodyBytes), headers);
        return;
      }
      if (!match) {
        send(response, call, { status: 404, body: { ok: false, error: 'not_found' } }, headers);
        return;
      }
      if (match.route !== 'POST /v1/auth/access_token' && !isAuthorized(request.headers)) {
        send(response, call, UNAUTHORIZED, headers);
        return;
      }
      if (typeof body === 'string') {
        send(response, call, { status: 400, body: { ok: false, error: 'invalid_json' } }, headers);
        return;
      }
      send(response, call, handle(match.route, match.params, body), headers);
    })().catch((error: unknown) => {
      if (response.destroyed) return; // a request cut short, e.g. by close()
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ ok: false, error: 'stand_in_error', message: String(error) }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  const accepted = (route: PortRoute, id: string, param: 'runId' | 'id'): RecordedCall[] =>
    calls.filter((call) => call.route === route && call.params[param] === id && call.status !== undefined && call.status < 400);
  const field = (call: RecordedCall, name: string): unknown => (isRecord(call.body) ? call.body[name] : undefined);
  const logCalls = (runId: string): ActionRunLogCall[] =>
    accepted('POST /v1/actions/runs/:runId/logs', runId, 'runId').map((call) => {
      const [terminationStatus, statusLabel] = [field(call, 'terminationStatus'), field(call, 'statusLabel')];
      return {
        message: String(field(call, 'message')),
        ...(typeof terminationStatus === 'string' ? { terminationStatus } : {}),
        ...(typeof statusLabel === 'string' ? { statusLabel } : {}),
      };
    });
  /** A log line with a `terminationStatus` sets the run's status as a status patch would. */
  const runChanges = (runId: string): unknown[] =>
    calls
      .filter((call) => call.params.runId === runId && call.status !== undefined && call.status < 400)
      .flatMap((call) => {
        if (call.route === 'PATCH /v1/actions/runs/:runId') return [call.body];
        const terminationStatus = field(call, 'terminationStatus');
        if (call.route !== 'POST /v1/actions/runs/:runId/logs' || typeof terminationStatus !== 'string') return [];
        const statusLabel = field(call, 'statusLabel');
        return [{ status: terminationStatus, ...(typeof statusLabel === 'string' ? { statusLabel } : {}) }];
      });

  return {
    url: `http://127.0.0.1:${port}`,
    clientId,
    clientSecret,
    calls,
    summary: () => {
      const byStatus: Record<string, number> = {};
      for (const { status } of calls) {
        if (status !== undefined) byStatus[String(status)] = (byStatus[String(status)] ?? 0) + 1;
      }
      return { calls: calls.length, byStatus };
    },
    tokenRequests: () => calls.filter((call) => call.route === 'POST /v1/auth/access_token').length,
    callsTo: (route) => calls.filter((call) => call.route === route),
    apiCallsForRun: (runId) => calls.filter((call) => call.params.runId === runId || call.params.id === runId),
    actionRunLogs: (runId) =>
      accepted('POST /v1/actions/runs/:runId/logs', runId, 'runId').map((call) => String(field(call, 'message'))),
    actionRunLogCalls: logCalls,
    actionRunPatches: runChanges,
    actionRunStatus: (runId) =>
      runChanges(runId)
        .map((change) => (isRecord(change) ? change.status : undefined))
        .filter((status) => typeof status === 'string')
        .at(-1),
    actionRunResponses: (runId) =>
      accepted('PATCH /v1/actions/runs/:runId/response', runId, 'runId').map((call) => field(call, 'response')),
    nodeRunLogs: (id) =>
      accepted('POST /v1/workflows/nodes/runs/:id/logs', id, 'id').flatMap((call) => {
        const logs = field(call, 'logs');
        return Array.isArray(logs) ? logs.map((log) => String(isRecord(log) ? log.message : log)) : [];
      }),
    nodeRunPatches: (id) => accepted('PATCH /v1/workflows/nodes/runs/:id', id, 'id').map((call) => call.body),
    enqueueActionRuns: (runs) => {
      pendingActionRuns.push(...runs);
    },
    enqueueNodeRuns: (nodeRuns) => {
      pendingNodeRuns.push(...nodeRuns);
    },
    failNext: (route, count, failure) => {
      if (!PORT_ROUTES.includes(route)) throw new Error(`Unknown route ${route}; expected one of ${PORT_ROUTES.join(', ')}`);
      if (!Number.isInteger(count) || count < 1) {
        throw new Error(`Expected \`count\` to be a positive integer (actual: ${String(count)}).`);
      }
      const queue = failures.get(route) ?? [];
      for (let index = 0; index < count; index += 1) queue.push(failure);
      failures.set(route, queue);
    },
    failFor: (durationMs, failure, failForOptions = {}) => {
      if (!Number.isFinite(durationMs) || durationMs <= 0) {
        throw new Error(`Expected \`durationMs\` to be a positive number (actual: ${String(durationMs)}).`);
      }
      const { except = [], startingWith } = failForOptions;
      const unknown = [...except, ...(startingWith === undefined ? [] : [startingWith])].find((route) => !PORT_ROUTES.includes(route));
      if (unknown !== undefined) throw new Error(`Unknown route ${unknown}; expected one of ${PORT_ROUTES.join(', ')}`);
      failureWindow = {
        durationMs,
        untilMs: startingWith === undefined ? Date.now() + durationMs : undefined,
        startingWith,
        failure,
        except: new Set(except),
      };
    },
    setRateLimit: (newRateLimit) => {
      checkRateLimit(newRateLimit);
      rateLimit = newRateLimit;
      rateWindow = { startMs: -1, used: 0 };
    },
    rateLimitedCalls: () => rateLimitedCount,
    setAnswerDelay: (ms) => {
      checkNonNegative('ms', ms);
      answerDelayMs = ms;
    },
    refusedAsTooLarge: () => tooLargeCount,
    expireTokens: () => tokens.clear(),
    setKafkaCredentials: (credentials) => {
      kafkaCredentials = credentials;
    },
    setAckAnswers: (answers) => {
      actionRunAck = answers.actionRun ?? actionRunAck;
      nodeRunAck = answers.nodeRun ?? nodeRunAck;
    },
    openConnections: () => new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count)))),
    close: () => {
      closed = true;
      for (const timer of delayedAnswers) clearTimeout(timer);
      delayedAnswers.clear();
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
