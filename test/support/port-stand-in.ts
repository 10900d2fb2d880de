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
  /** The parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  /** Whether the call carried `x-port-reserved-usage: true` (SPEC §8: claim and ack calls). */
  hasReservedUsageHeader: boolean;
  /** When the request was received (ms since the epoch). */
  at: number;
  /** The status answered; undefined while unanswered (a hanging call). */
  status: number | undefined;
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
}

/** A local stand-in for the Port API: real HTTP on loopback, recording every call. */
export interface PortStandIn {
  /** Base URL, no trailing slash (for `PORT_API_BASE_URL`). */
  url: string;
  clientId: string;
  clientSecret: string;
  calls: RecordedCall[];
  /** Calls to the token route, answered or not. */
  tokenRequests(): number;
  /** Every call of a route (including failed ones), in order. */
  callsTo(route: PortRoute): RecordedCall[];
  /** Every call addressed to one run or node run id, in order. */
  apiCallsForRun(runId: string): RecordedCall[];
  /** Run log messages Port accepted for an action run, in order. */
  actionRunLogs(runId: string): string[];
  /** Bodies of accepted `PATCH /v1/actions/runs/:runId` calls. */
  actionRunPatches(runId: string): unknown[];
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
  /** Invalidates every issued token: the next call with one gets 401. */
  expireTokens(): void;
  setKafkaCredentials(credentials: KafkaCredentials): void;
  setAckAnswers(answers: { actionRun?: ActionRunAckAnswer; nodeRun?: NodeRunAckAnswer }): void;
  /** Stops the server, ending hanging calls and open connections. */
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): Reply {
  return { status: 422, body: { ok: false, error: 'invalid_request', message } };
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

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Starts the Port API stand-in on a free loopback port. */
export async function startPortStandIn(options: PortStandInOptions = {}): Promise<PortStandIn> {
  const {
    clientId = DEFAULT_CLIENT_ID,
    clientSecret = DEFAULT_CLIENT_SECRET,
    tokenTtlSeconds = DEFAULT_TOKEN_TTL_SECONDS,
  } = options;
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
      case 'POST /v1/actions/runs/:runId/logs':
        if (typeof fields.message !== 'string') return invalid('message must be a string');
        return { status: 201, body: { ok: true, runLog: { runId: params.runId, message: fields.message } } };
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

  const send = (response: ServerResponse, call: RecordedCall, reply: Reply, headers: Record<string, string> = {}): void => {
    call.status = reply.status;
    response.writeHead(reply.status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(reply.body));
  };

  const server = createServer((request, response) => {
    void (async () => {
      const method = request.method ?? 'GET';
      const path = (request.url ?? '/').split('?')[0] ?? '/';
      const body = await readBody(request);
      const match = matchRoute(method, path);
      const call: RecordedCall = {
        method,
        path,
        route: match?.route,
        params: match?.params ?? {},
        headers: request.headers,
        body,
        hasReservedUsageHeader: request.headers['x-port-reserved-usage'] === 'true',
        at: Date.now(),
        status: undefined,
      };
      calls.push(call);

      if (!match) {
        send(response, call, { status: 404, body: { ok: false, error: 'not_found' } });
        return;
      }
      const failure = failures.get(match.route)?.shift() ?? windowFailure(match.route);
      if (failure) {
        if ('hang' in failure) return; // answered never; close() destroys the socket
        const headers: Record<string, string> =
          failure.retryAfterSeconds === undefined ? {} : { 'retry-after': String(failure.retryAfterSeconds) };
        send(response, call, { status: failure.status, body: failure.body ?? { ok: false, error: 'injected_failure' } }, headers);
        return;
      }
      if (match.route !== 'POST /v1/auth/access_token' && !isAuthorized(request.headers)) {
        send(response, call, UNAUTHORIZED);
        return;
      }
      if (typeof body === 'string') {
        send(response, call, { status: 400, body: { ok: false, error: 'invalid_json' } });
        return;
      }
      send(response, call, handle(match.route, match.params, body));
    })().catch((error: unknown) => {
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

  return {
    url: `http://127.0.0.1:${port}`,
    clientId,
    clientSecret,
    calls,
    tokenRequests: () => calls.filter((call) => call.route === 'POST /v1/auth/access_token').length,
    callsTo: (route) => calls.filter((call) => call.route === route),
    apiCallsForRun: (runId) => calls.filter((call) => call.params.runId === runId || call.params.id === runId),
    actionRunLogs: (runId) =>
      accepted('POST /v1/actions/runs/:runId/logs', runId, 'runId').map((call) => String(field(call, 'message'))),
    actionRunPatches: (runId) => accepted('PATCH /v1/actions/runs/:runId', runId, 'runId').map((call) => call.body),
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
    expireTokens: () => tokens.clear(),
    setKafkaCredentials: (credentials) => {
      kafkaCredentials = credentials;
    },
    setAckAnswers: (answers) => {
      actionRunAck = answers.actionRun ?? actionRunAck;
      nodeRunAck = answers.nodeRun ?? nodeRunAck;
    },
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
