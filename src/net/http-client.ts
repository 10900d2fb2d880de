/**
 * The HTTP client factories, for internal services and the Port API: keep-alive connections (a
 * run makes several calls to the same hosts), raw text bodies (the caller decides how to parse),
 * every status resolved (the caller decides what is success), the same TLS and size rules.
 *
 * Two engines, each where it fits: axios for requests to internal services (one per run:
 * redirects, its error model), and undici for the Port API, which a run calls nine times in a
 * row — there axios cost ~230 µs of CPU per call against undici's ~36 µs (measured here, a
 * keep-alive loopback server in another process), most of the agent's CPU per run.
 */
import http from 'node:http';
import https from 'node:https';
import type { SecureContext } from 'node:tls';
import axios from 'axios';
import type { AxiosInstance } from 'axios';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { Agent, EnvHttpProxyAgent } from 'undici';
import type { Dispatcher } from 'undici';
import { createIdleSocketCap } from './idle-socket-cap.js';
import type { IdleSocketCap } from './idle-socket-cap.js';
import { createProxyRouter, hasProxy, proxiesByScheme } from './proxy-routing.js';
import type { ProxySettings } from './proxy-routing.js';

/** Responses larger than this are cut off: a runaway service must not exhaust the agent's memory. */
export const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const MAX_REDIRECTS = 5;
/**
 * A keep-alive connection to an internal service idle this long is closed. Without a limit every
 * host ever called kept its sockets for good, each holding 20-40 KB of the agent's heap (the
 * socket, and the first request axios made on it, which Node's agent keeps with the socket's
 * options): a mapping that sends each tenant's runs to a host of its own grew the agent by hundreds
 * of MB. With it, open idle sockets are those of the last 2 s of runs. 2 s keeps a connection
 * through a burst of runs and a first retry (backoff 1-2 s); a service called less often pays a new
 * handshake per run, small beside the run's own Port calls. It is shorter than servers' idle
 * timeouts (Node.js 5 s, AWS ALB 60 s, nginx 75 s), so the agent closes first and never sends on a
 * connection the server is closing; a server announcing a shorter `Keep-Alive: timeout` is followed.
 */
export const IDLE_SOCKET_TIMEOUT_MS = 2_000;
/**
 * The same for {@link createHttpTransport} (the Port API): undici's own default, kept, since it is
 * one origin and Port is far away (a new connection costs round trips). It also caps a server's
 * `Keep-Alive: timeout` hint, which undici would otherwise follow for up to 10 minutes.
 */
export const TRANSPORT_IDLE_SOCKET_TIMEOUT_MS = 4_000;
/**
 * Idle keep-alive connections the internal-services client keeps across all hosts and all its
 * agents (direct, per proxy); past it the one idle the longest closes (net/idle-socket-cap.ts).
 * A busy host keeps its pool (a run takes the most recently idle socket); hosts called once in a
 * while pay a new connection instead of each holding one.
 */
export const MAX_IDLE_SOCKETS = 256;

export interface HttpClientOptions {
  /** Verify TLS certificates (WEBHOOK_VERIFY_SSL for internal services; always for Port). */
  verifyTls: boolean;
  userAgent: string;
  /** Open connections per host; more calls wait for one (each socket costs buffers). */
  maxSocketsPerHost: number;
  /** HTTP(S)_PROXY, ALL_PROXY and NO_PROXY; absent: direct connections. */
  proxy?: ProxySettings | undefined;
  /** The trusted CAs, built once (trust/secure-context.ts); absent: Node's defaults (which include NODE_EXTRA_CA_CERTS). */
  secureContext?: SecureContext | undefined;
  /**
   * Closes a keep-alive connection idle this long; default {@link IDLE_SOCKET_TIMEOUT_MS}
   * (internal services) or {@link TRANSPORT_IDLE_SOCKET_TIMEOUT_MS} (a transport).
   */
  idleSocketTimeoutMs?: number | undefined;
}

/** The idle timeout to use, checked: a bad one would keep connections for good or refuse to pool. */
function idleSocketTimeoutOf(options: HttpClientOptions, defaultMs: number): number {
  const timeoutMs = options.idleSocketTimeoutMs ?? defaultMs;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`Expected \`idleSocketTimeoutMs\` to be a positive number of milliseconds (actual: ${timeoutMs})`);
  }
  return timeoutMs;
}

/**
 * Options of every Node.js agent of the internal-services client. `timeout` is the idle timeout of
 * a pooled socket (Node.js destroys a free socket when it fires, and drops a host's entries once
 * it has no socket left); a request in flight is bounded by its own timeout instead.
 */
function nodeAgentOptions(options: HttpClientOptions): http.AgentOptions {
  return { keepAlive: true, maxSockets: options.maxSocketsPerHost, scheduling: 'lifo', timeout: idleSocketTimeoutOf(options, IDLE_SOCKET_TIMEOUT_MS) };
}

/** The Node.js agents each client made (direct and per proxy), for {@link closeHttpClient}. */
const agentsOfClient = new WeakMap<AxiosInstance, http.Agent[]>();

/** A client's agents: each kept for {@link closeHttpClient}, their idle sockets under one cap. */
interface ClientPools {
  agents: http.Agent[];
  idleCap: IdleSocketCap;
}

function pooledAgent<T extends http.Agent>(pools: ClientPools, agent: T): T {
  pools.idleCap.watch(agent);
  pools.agents.push(agent);
  return agent;
}

/** Closes every connection of a client from {@link createHttpClient}, idle or not; for after the last request. */
export function closeHttpClient(client: AxiosInstance): void {
  for (const agent of agentsOfClient.get(client) ?? []) agent.destroy();
}

/** The TLS options every client adds to its connections: the shared context, when there is one. */
function trustOptions(options: HttpClientOptions): { secureContext?: SecureContext } {
  return options.secureContext ? { secureContext: options.secureContext } : {};
}

/**
 * https-proxy-agent opens the TLS connection to the service with the request's options only, not
 * the agent's: the trusted CAs and the verification switch are added to each connection here.
 */
class TlsTrustingProxyAgent extends HttpsProxyAgent<string> {
  constructor(
    proxyUrl: string,
    options: ConstructorParameters<typeof HttpsProxyAgent<string>>[1],
    private readonly tls: { rejectUnauthorized: boolean; secureContext?: SecureContext },
  ) {
    super(proxyUrl, options);
  }

  override connect(request: http.ClientRequest, options: Parameters<HttpsProxyAgent<string>['connect']>[1]): ReturnType<HttpsProxyAgent<string>['connect']> {
    return super.connect(request, { ...options, ...this.tls } as typeof options);
  }
}

/**
 * axios' own proxy support reads the environment and sends https:// requests to the proxy in the
 * clear instead of tunnelling them (CONNECT); it is turned off, and each request gets the agent of
 * its route instead: a tunnelling agent for https, an absolute-form agent for http.
 */
function routeThroughProxies(client: AxiosInstance, options: HttpClientOptions & { proxy: ProxySettings }, pools: ClientPools): void {
  const proxyFor = createProxyRouter(options.proxy);
  const agents = new Map<string, http.Agent>();
  const agentFor = (proxyUrl: string, protocol: string): http.Agent => {
    const key = `${protocol}${proxyUrl}`;
    let agent = agents.get(key);
    if (!agent) {
      // The trusted CAs verify an https:// proxy itself too.
      // Both extend Node's http.Agent and pool per service: idle sockets close as the direct ones do.
      const common = { ...nodeAgentOptions(options), ...trustOptions(options) };
      agent = pooledAgent(
        pools,
        protocol === 'https:'
          ? new TlsTrustingProxyAgent(proxyUrl, common, { rejectUnauthorized: options.verifyTls, ...trustOptions(options) })
          : new HttpProxyAgent(proxyUrl, common),
      );
      agents.set(key, agent);
    }
    return agent;
  };
  client.interceptors.request.use(
    (config) => {
      const url = new URL(config.url ?? '');
      const proxyUrl = proxyFor(url);
      if (proxyUrl !== undefined) {
        if (url.protocol === 'https:') config.httpsAgent = agentFor(proxyUrl, 'https:');
        else config.httpAgent = agentFor(proxyUrl, 'http:');
      }
      return config;
    },
    undefined,
    { synchronous: true },
  );
}

export function createHttpClient(options: HttpClientOptions): AxiosInstance {
  const pools: ClientPools = { agents: [], idleCap: createIdleSocketCap(MAX_IDLE_SOCKETS) };
  const client = axios.create({
    httpAgent: pooledAgent(pools, new http.Agent(nodeAgentOptions(options))),
    httpsAgent: pooledAgent(pools, new https.Agent({ ...nodeAgentOptions(options), rejectUnauthorized: options.verifyTls, ...trustOptions(options) })),
    proxy: false,
    // SPEC §6: redirects followed.
    maxRedirects: MAX_REDIRECTS,
    maxContentLength: MAX_RESPONSE_BYTES,
    maxBodyLength: Infinity,
    responseType: 'text',
    // Keep the body as received; axios would otherwise parse JSON and lose the exact text.
    transformResponse: [(data: unknown) => data],
    validateStatus: () => true,
    headers: { 'User-Agent': options.userAgent },
  });
  if (options.proxy && hasProxy(options.proxy)) routeThroughProxies(client, { ...options, proxy: options.proxy }, pools);
  agentsOfClient.set(client, pools.agents);
  return client;
}

/** One request of {@link HttpTransport}: `path` (with any query) is joined to the transport's base URL. */
export interface TransportRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Sent as is; undefined sends no body. */
  body: string | undefined;
  /** Bounds the wait for the response headers, and again for the body. */
  timeoutMs: number;
}

export interface TransportResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  text: string;
}

/** Requests to one base URL; rejects only when there is no answer (connection error, timeout). */
export interface HttpTransport {
  send(request: TransportRequest): Promise<TransportResponse>;
  /**
   * Ends every connection, calls in flight included (they reject): after a stop, what Port has not
   * answered is not committed and comes again, and a Port that never answers must not hold the exit.
   */
  close(): Promise<void>;
}

export function createHttpTransport(baseUrl: string, options: HttpClientOptions): HttpTransport {
  const base = new URL(baseUrl);
  const origin = base.origin;
  // A base URL with a path (a gateway in front of Port) keeps it in front of every call's path.
  const pathPrefix = base.pathname.replace(/\/+$/, '');
  const tls = { rejectUnauthorized: options.verifyTls, ...trustOptions(options) };
  const idleSocketTimeoutMs = idleSocketTimeoutOf(options, TRANSPORT_IDLE_SOCKET_TIMEOUT_MS);
  // keepAliveMaxTimeout caps what a server's `Keep-Alive: timeout` hint may extend it to (undici's
  // default, 10 minutes). undici's Agent drops an origin's pool once its last connection is gone
  // (lib/dispatcher/agent.js, on `disconnect`), so no origin is kept for good either.
  const agentOptions = { connections: options.maxSocketsPerHost, pipelining: 1, connect: tls, keepAliveTimeout: idleSocketTimeoutMs, keepAliveMaxTimeout: idleSocketTimeoutMs };
  const proxies = options.proxy && hasProxy(options.proxy) ? { ...proxiesByScheme(options.proxy), noProxy: options.proxy.noProxy } : undefined;
  // Empty strings, not undefined: undici would read the environment itself for an absent value.
  const dispatcher: Dispatcher = proxies
    ? // proxyTunnel false: http:// calls go to the proxy in absolute form, as webhook calls do.
      new EnvHttpProxyAgent({ ...agentOptions, proxyTunnel: false, requestTls: tls, proxyTls: tls, httpProxy: proxies.http ?? '', httpsProxy: proxies.https ?? '', noProxy: proxies.noProxy })
    : new Agent(agentOptions);
  return {
    async send(request) {
      const response = await dispatcher.request({
        origin,
        path: `${pathPrefix}${request.path}`,
        method: request.method as 'GET',
        headers: { 'user-agent': options.userAgent, ...request.headers },
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          response.body.destroy();
          throw new Error(`response too large (over ${MAX_RESPONSE_BYTES} bytes)`);
        }
        chunks.push(chunk);
      }
      return { status: response.statusCode, headers: headerRecord(response.headers), text: Buffer.concat(chunks, size).toString('utf8') };
    },
    close: () => dispatcher.destroy(),
  };
}

/** Response headers as a plain record, names lower-cased unless kept as given. */
export function headerRecord(headers: unknown, nameCase: 'lower' | 'as-given' = 'lower'): Record<string, string> {
  const record: Record<string, string> = {};
  if (typeof headers !== 'object' || headers === null) return record;
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value === undefined || value === null) continue;
    record[nameCase === 'lower' ? name.toLowerCase() : name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return record;
}

/**
 * Response headers with their names as the service sent them (Node.js lower-cases `headers`;
 * `rawHeaders` keeps the wire's spelling), as the official agent hands them to report expressions:
 * a name repeated in any case keeps its first spelling, its values joined with ", ".
 */
export function headersAsSent(rawHeaders: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {};
  const spelling = new Map<string, string>();
  for (let position = 0; position + 1 < rawHeaders.length; position += 2) {
    const name = rawHeaders[position] as string;
    const value = rawHeaders[position + 1] as string;
    const key = name.toLowerCase();
    const first = spelling.get(key);
    if (first === undefined) {
      spelling.set(key, name);
      record[name] = value;
    } else {
      record[first] = `${record[first]}, ${value}`;
    }
  }
  return record;
}

/** The body parsed as JSON when it is JSON, else undefined (the official agent tries JSON first). */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
