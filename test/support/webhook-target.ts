import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, RequestListener } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { waitFor } from './wait.js';

/** One request the target received. */
export interface ReceivedRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  /** Query parameters (the last value wins for a repeated name). */
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The body exactly as received, as UTF-8 text. */
  rawBody: string;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  json: unknown;
  /**
   * Whether `x-port-signature` is `v1,` + base64(HMAC-SHA256(secret, `<x-port-timestamp>.<raw body>`)),
   * computed here independently of the agent's code (SPEC §6).
   */
  signatureValid: boolean;
  /** When the request was received (ms since the epoch). */
  at: number;
}

/** What the target answers: a response (default 200, empty body), no answer, or a dropped connection. */
export type TargetResponse =
  | { status?: number; body?: string | object; headers?: Record<string, string>; delayMs?: number }
  | { hang: true }
  | { destroy: true };

export interface WebhookTargetOptions {
  /** The HMAC key the agent signs with (`PORT_CLIENT_SECRET`). */
  secret: string;
  /** Chooses the answer for each request; called after the request is recorded. */
  respond?: (request: ReceivedRequest) => TargetResponse | Promise<TargetResponse>;
  /** Serve HTTPS with this key and certificate (e.g. from test-ca.ts); the URL is then https://localhost:<port>. */
  tls?: { key: string; cert: string };
}

/** An internal service the agent delivers to: real HTTP on loopback. */
export interface WebhookTarget {
  /** Base URL, no trailing slash. */
  url: string;
  /** Requests received so far, in arrival order. */
  requests: ReceivedRequest[];
  /** Resolves with all requests once at least `count` have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  /**
   * Stops listening, keeping the port: new connections are refused (ECONNREFUSED) as if the
   * service were down. Idle keep-alive connections are closed at once; requests already received
   * are still answered, with `Connection: close`. No-op when not listening.
   */
  stopListening(): Promise<void>;
  /** Listens again on the same port (and `url`) after {@link stopListening}. No-op when listening. */
  listenAgain(): Promise<void>;
  /** Connections open to it now (a client's idle keep-alive connections count). */
  openConnections(): Promise<number>;
  /** Stops the server, dropping open connections and pending answers. */
  close(): Promise<void>;
}

const DEFAULT_WAIT_TIMEOUT_MS = 10_000;

function isSignatureValid(secret: string, headers: IncomingHttpHeaders, rawBody: string): boolean {
  const timestamp = headers['x-port-timestamp'];
  const signature = headers['x-port-signature'];
  if (typeof timestamp !== 'string' || typeof signature !== 'string') return false;
  const expected = `v1,${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`, 'utf8').digest('base64')}`;
  return signature === expected;
}

async function readRawBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Starts a webhook target on a free loopback port. */
export async function startWebhookTarget(options: WebhookTargetOptions): Promise<WebhookTarget> {
  const { secret } = options;
  const respond = options.respond ?? ((): TargetResponse => ({}));
  const requests: ReceivedRequest[] = [];
  const delays = new Set<NodeJS.Timeout>();
  let isRefusing = false;

  const listener: RequestListener = (request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const rawBody = await readRawBody(request);
      const received: ReceivedRequest = {
        method: request.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: request.headers,
        rawBody,
        json: parseJson(rawBody),
        signatureValid: isSignatureValid(secret, request.headers, rawBody),
        at: Date.now(),
      };
      requests.push(received);

      const answer = await respond(received);
      if ('hang' in answer) return; // never answered; close() destroys the socket
      if ('destroy' in answer) {
        request.socket.destroy();
        return;
      }
      const { status = 200, body, headers = {}, delayMs = 0 } = answer;
      if (delayMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            delays.delete(timer);
            resolve();
          }, delayMs);
          delays.add(timer);
        });
      }
      const isText = body === undefined || typeof body === 'string';
      const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
      response.writeHead(status, {
        'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json',
        ...headers,
        // Stopped listening: answer what was received, then let the connection go.
        ...(isRefusing ? { connection: 'close' } : {}),
      });
      response.end(payload);
    })().catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`webhook target error: ${String(error)}`);
    });
  };
  const server = options.tls ? createTlsServer(options.tls, listener) : createServer(listener);

  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    // A certificate names a host (test-ca.ts: localhost), so TLS targets are reached by name.
    url: options.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    openConnections: () => new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count)))),
    requests,
    waitForRequests: (count, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) =>
      waitFor(() => requests.length >= count && [...requests], {
        timeoutMs,
        description: `${count} request(s) at the webhook target`,
      }),
    stopListening: async () => {
      if (!server.listening || closing) return;
      isRefusing = true;
      // close() drops the listening socket at once; its callback would wait for open connections.
      server.close();
      server.closeIdleConnections();
    },
    listenAgain: async () => {
      if (server.listening) return;
      if (closing) throw new Error('The webhook target is closed');
      await listen(port);
      isRefusing = false;
    },
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const timer of delays) clearTimeout(timer);
        delays.clear();
        if (!server.listening) {
          // Stopped by stopListening(): only connections still open remain.
          server.closeAllConnections();
          resolve();
          return;
        }
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** An http URL on a loopback port where nothing listens: connections to it are refused. */
export async function refusedUrl(): Promise<string> {
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
