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
import { createProxyRouter, hasProxy, proxiesByScheme } from './proxy-routing.js';
import type { ProxySettings } from './proxy-routing.js';

/** Responses larger than this are cut off: a runaway service must not exhaust the agent's memory. */
export const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const MAX_REDIRECTS = 5;

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
function routeThroughProxies(client: AxiosInstance, options: HttpClientOptions & { proxy: ProxySettings }): void {
  const proxyFor = createProxyRouter(options.proxy);
  const agents = new Map<string, http.Agent>();
  const agentFor = (proxyUrl: string, protocol: string): http.Agent => {
    const key = `${protocol}${proxyUrl}`;
    let agent = agents.get(key);
    if (!agent) {
      // The trusted CAs verify an https:// proxy itself too.
      const common = { keepAlive: true, maxSockets: options.maxSocketsPerHost, scheduling: 'lifo' as const, ...trustOptions(options) };
      agent =
        protocol === 'https:'
          ? new TlsTrustingProxyAgent(proxyUrl, common, { rejectUnauthorized: options.verifyTls, ...trustOptions(options) })
          : new HttpProxyAgent(proxyUrl, common);
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
  const client = axios.create({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerHost, scheduling: 'lifo' }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerHost, scheduling: 'lifo', rejectUnauthorized: options.verifyTls, ...trustOptions(options) }),
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
  if (options.proxy && hasProxy(options.proxy)) routeThroughProxies(client, { ...options, proxy: options.proxy });
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
  close(): Promise<void>;
}

export function createHttpTransport(baseUrl: string, options: HttpClientOptions): HttpTransport {
  const base = new URL(baseUrl);
  const origin = base.origin;
  // A base URL with a path (a gateway in front of Port) keeps it in front of every call's path.
  const pathPrefix = base.pathname.replace(/\/+$/, '');
  const tls = { rejectUnauthorized: options.verifyTls, ...trustOptions(options) };
  const agentOptions = { connections: options.maxSocketsPerHost, pipelining: 1, connect: tls };
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
    close: () => dispatcher.close(),
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
