/**
 * A Kafka-protocol front for the mock broker, at the socket level (docs/development.md): librdkafka's mock
 * cluster speaks neither SASL nor TLS and advertises its own loopback ports. One front per broker:
 *
 * - answers SaslHandshake and SaslAuthenticate itself (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, against
 *   users the test sets and changes), failing with SASL_AUTHENTICATION_FAILED (58) and closing the
 *   connection as a Kafka broker does, and adds both APIs to the broker's ApiVersions answer;
 * - passes every other request to the broker once the connection is authenticated;
 * - rewrites the broker addresses in Metadata and FindCoordinator answers to the ones a test
 *   advertises (its own, or those of a TLS tunnel in front of it), so a client never reaches the
 *   mock directly.
 *
 * Request and response layouts are those of the versions kafkajs 2.2 uses against the mock
 * (ApiVersions v0–2, Metadata v0–6, FindCoordinator v0–2, SaslHandshake v0–1, SaslAuthenticate
 * v0–1: none is a "flexible" version), as encoded in kafkajs' src/protocol/requests/.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export type SaslMechanismName = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface BrokerFrontOptions {
  /** Mechanisms clients must authenticate with; none: connections pass without SASL. */
  saslMechanisms?: readonly SaslMechanismName[];
  /** Accepted username → password. */
  users?: Record<string, string>;
}

/** One SASL authentication a front judged; never the password. */
export interface Authentication {
  username: string;
  mechanism: SaslMechanismName;
  isAccepted: boolean;
  at: number;
}

export interface BrokerFronts {
  /** The fronts' own `127.0.0.1:<port>`, in the order of the brokers given. */
  addresses: string[];
  /** From now on, Metadata and FindCoordinator answers name these addresses (same order) instead of the brokers'. */
  advertise(addresses: readonly string[]): void;
  setUsers(users: Record<string, string>): void;
  /** Every SASL authentication so far, in order. */
  authentications: Authentication[];
  /** Closes every open connection, as brokers do when credentials are revoked. */
  dropConnections(): void;
  close(): Promise<void>;
}

const API_METADATA = 3;
const API_FIND_COORDINATOR = 10;
const API_SASL_HANDSHAKE = 17;
const API_API_VERSIONS = 18;
const API_SASL_AUTHENTICATE = 36;
const UNSUPPORTED_SASL_MECHANISM = 33;
const SASL_AUTHENTICATION_FAILED = 58;
const SCRAM_ITERATIONS = 4096;
const SCRAM_DIGESTS = { 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-512': 'sha512' } as const;
const FAILED_TEXT = 'Authentication failed: Invalid username or password';

/** Reads a Kafka int16-length string (null for -1) at `offset`. */
function readString(buffer: Buffer, offset: number): { value: string | null; next: number } {
  const length = buffer.readInt16BE(offset);
  if (length < 0) return { value: null, next: offset + 2 };
  return { value: buffer.toString('utf8', offset + 2, offset + 2 + length), next: offset + 2 + length };
}

function int16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeInt16BE(value);
  return buffer;
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function kafkaString(value: string | null): Buffer {
  if (value === null) return int16(-1);
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([int16(bytes.length), bytes]);
}

function kafkaBytes(value: Buffer): Buffer {
  return Buffer.concat([int32(value.length), value]);
}

/** A response frame: size, correlation id, body. */
function frame(correlationId: number, body: Buffer): Buffer {
  return Buffer.concat([int32(body.length + 4), int32(correlationId), body]);
}

/** Splits a byte stream into Kafka frames (without their size prefix). */
function frameReader(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const size = pending.readInt32BE(0);
      if (pending.length < 4 + size) break;
      const next = pending.subarray(4, 4 + size);
      pending = pending.subarray(4 + size);
      onFrame(next);
    }
  };
}

/** Parses `a=1,b=2` SCRAM attributes (a value may itself hold `=`). */
function scramAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    const separator = part.indexOf('=');
    if (separator > 0) attributes.set(part.slice(0, separator), part.slice(separator + 1));
  }
  return attributes;
}

function xor(left: Buffer, right: Buffer): Buffer {
  const result = Buffer.alloc(left.length);
  for (let index = 0; index < left.length; index += 1) result[index] = (left[index] ?? 0) ^ (right[index] ?? 0);
  return result;
}

interface ScramExchange {
  username: string;
  password: string;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  salt: Buffer;
}

/** What a SaslAuthenticate step answers: auth bytes to send, and whether the exchange is over. */
type SaslStep = { kind: 'continue'; authBytes: Buffer } | { kind: 'accepted'; authBytes: Buffer } | { kind: 'refused'; username: string };

/** One client connection through a front: the SASL state and the requests awaiting answers. */
class FrontConnection {
  private isAuthenticated: boolean;
  private mechanism: SaslMechanismName | undefined;
  private scram: ScramExchange | undefined;
  /** correlation id → api key and version of the requests passed on whose answers are rewritten. */
  private readonly awaiting = new Map<number, { apiKey: number; apiVersion: number }>();
  private readonly upstream: Socket;

  constructor(
    private readonly client: Socket,
    upstreamAddress: string,
    private readonly front: FrontState,
  ) {
    this.isAuthenticated = front.mechanisms.length === 0;
    const separator = upstreamAddress.lastIndexOf(':');
    this.upstream = connect({ host: upstreamAddress.slice(0, separator), port: Number(upstreamAddress.slice(separator + 1)) });
    const closeBoth = () => this.close();
    for (const socket of [client, this.upstream]) {
      socket.on('error', closeBoth);
      socket.on('close', closeBoth);
    }
    client.on('data', frameReader((request) => this.onRequest(request)));
    this.upstream.on('data', frameReader((response) => this.onResponse(response)));
  }

  close(): void {
    this.client.destroy();
    this.upstream.destroy();
    this.front.connections.delete(this);
  }

  private onRequest(request: Buffer): void {
    const apiKey = request.readInt16BE(0);
    const apiVersion = request.readInt16BE(2);
    const correlationId = request.readInt32BE(4);
    const bodyAt = readString(request, 8).next;
    if (apiKey === API_SASL_HANDSHAKE && this.front.mechanisms.length > 0) {
      this.handshake(correlationId, readString(request, bodyAt).value ?? '');
      return;
    }
    if (apiKey === API_SASL_AUTHENTICATE && this.front.mechanisms.length > 0) {
      const length = request.readInt32BE(bodyAt);
      this.authenticate(correlationId, apiVersion, request.subarray(bodyAt + 4, bodyAt + 4 + length));
      return;
    }
    if (!this.isAuthenticated && apiKey !== API_API_VERSIONS) {
      // A SASL listener takes nothing but ApiVersions and the SASL exchange before authentication.
      this.close();
      return;
    }
    if (apiKey === API_METADATA || apiKey === API_FIND_COORDINATOR || apiKey === API_API_VERSIONS) this.awaiting.set(correlationId, { apiKey, apiVersion });
    this.upstream.write(Buffer.concat([int32(request.length), request]));
  }

  private onResponse(response: Buffer): void {
    const correlationId = response.readInt32BE(0);
    const request = this.awaiting.get(correlationId);
    this.awaiting.delete(correlationId);
    let body = response.subarray(4);
    if (request?.apiKey === API_METADATA) body = this.front.rewriteMetadata(body, request.apiVersion);
    if (request?.apiKey === API_FIND_COORDINATOR) body = this.front.rewriteCoordinator(body, request.apiVersion);
    if (request?.apiKey === API_API_VERSIONS && this.front.mechanisms.length > 0) body = withSaslApis(body);
    this.client.write(frame(correlationId, body));
  }

  private handshake(correlationId: number, mechanism: string): void {
    const enabled = this.front.mechanisms;
    const isEnabled = (enabled as readonly string[]).includes(mechanism);
    if (isEnabled) this.mechanism = mechanism as SaslMechanismName;
    const names = Buffer.concat(enabled.map((name) => kafkaString(name)));
    this.client.write(frame(correlationId, Buffer.concat([int16(isEnabled ? 0 : UNSUPPORTED_SASL_MECHANISM), int32(enabled.length), names])));
  }

  private authenticate(correlationId: number, apiVersion: number, authBytes: Buffer): void {
    const step = this.saslStep(authBytes);
    const lifetime = apiVersion >= 1 ? Buffer.alloc(8) : Buffer.alloc(0); // session_lifetime_ms 0: unlimited
    if (step.kind === 'refused') {
      this.record(step.username, false);
      const body = Buffer.concat([int16(SASL_AUTHENTICATION_FAILED), kafkaString(FAILED_TEXT), kafkaBytes(Buffer.alloc(0)), lifetime]);
      // A Kafka broker answers, then closes the connection.
      this.client.end(frame(correlationId, body));
      return;
    }
    if (step.kind === 'accepted') this.isAuthenticated = true;
    this.client.write(frame(correlationId, Buffer.concat([int16(0), kafkaString(null), kafkaBytes(step.authBytes), lifetime])));
  }

  private record(username: string, isAccepted: boolean): void {
    if (this.mechanism) this.front.authentications.push({ username, mechanism: this.mechanism, isAccepted, at: Date.now() });
  }

  private saslStep(authBytes: Buffer): SaslStep {
    const mechanism = this.mechanism;
    if (mechanism === undefined) return { kind: 'refused', username: '' };
    if (mechanism === 'PLAIN') {
      const [, username = '', password = ''] = authBytes.toString('utf8').split('\0');
      const isAccepted = this.front.users.get(username) === password;
      if (!isAccepted) return { kind: 'refused', username };
      this.record(username, true);
      return { kind: 'accepted', authBytes: Buffer.alloc(0) };
    }
    const digest = SCRAM_DIGESTS[mechanism];
    const message = authBytes.toString('utf8');
    if (this.scram === undefined) {
      // client-first: "n,,n=<user>,r=<client nonce>" (RFC 5802; kafkajs src/broker/saslAuthenticator/scram.js)
      const clientFirstBare = message.slice(message.indexOf(',', message.indexOf(',') + 1) + 1);
      const attributes = scramAttributes(clientFirstBare);
      const username = (attributes.get('n') ?? '').replace(/=2C/g, ',').replace(/=3D/g, '=');
      const password = this.front.users.get(username);
      if (password === undefined) return { kind: 'refused', username };
      const nonce = `${attributes.get('r') ?? ''}${randomBytes(18).toString('base64url')}`;
      const salt = randomBytes(16);
      const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${SCRAM_ITERATIONS}`;
      this.scram = { username, password, clientFirstBare, serverFirst, nonce, salt };
      return { kind: 'continue', authBytes: Buffer.from(serverFirst) };
    }
    // client-final: "c=biws,r=<nonce>,p=<proof>"
    const exchange = this.scram;
    this.scram = undefined;
    const proofAt = message.lastIndexOf(',p=');
    const withoutProof = message.slice(0, proofAt);
    const proof = Buffer.from(message.slice(proofAt + 3), 'base64');
    const saltedPassword = pbkdf2Sync(exchange.password, exchange.salt, SCRAM_ITERATIONS, digest === 'sha512' ? 64 : 32, digest);
    const clientKey = createHmac(digest, saltedPassword).update('Client Key').digest();
    const storedKey = createHash(digest).update(clientKey).digest();
    const authMessage = `${exchange.clientFirstBare},${exchange.serverFirst},${withoutProof}`;
    const expectedProof = xor(clientKey, createHmac(digest, storedKey).update(authMessage).digest());
    const isAccepted = scramAttributes(withoutProof).get('r') === exchange.nonce && proof.length === expectedProof.length && timingSafeEqual(proof, expectedProof);
    if (!isAccepted) return { kind: 'refused', username: exchange.username };
    this.record(exchange.username, true);
    const serverKey = createHmac(digest, saltedPassword).update('Server Key').digest();
    return { kind: 'accepted', authBytes: Buffer.from(`v=${createHmac(digest, serverKey).update(authMessage).digest('base64')}`) };
  }
}

/** Adds SaslHandshake v0–1 and SaslAuthenticate v0–1 to an ApiVersions v0–2 answer. */
function withSaslApis(body: Buffer): Buffer {
  if (body.readInt16BE(0) !== 0) return body;
  const count = body.readInt32BE(2);
  const entries: Buffer[] = [];
  let offset = 6;
  for (let index = 0; index < count; index += 1, offset += 6) {
    const apiKey = body.readInt16BE(offset);
    if (apiKey !== API_SASL_HANDSHAKE && apiKey !== API_SASL_AUTHENTICATE) entries.push(body.subarray(offset, offset + 6));
  }
  for (const apiKey of [API_SASL_HANDSHAKE, API_SASL_AUTHENTICATE]) entries.push(Buffer.concat([int16(apiKey), int16(0), int16(1)]));
  return Buffer.concat([int16(0), int32(entries.length), ...entries, body.subarray(offset)]);
}

interface FrontState {
  mechanisms: readonly SaslMechanismName[];
  users: Map<string, string>;
  authentications: Authentication[];
  connections: Set<FrontConnection>;
  rewriteMetadata(body: Buffer, version: number): Buffer;
  rewriteCoordinator(body: Buffer, version: number): Buffer;
}

/** Starts one front per broker address, all on loopback ports of their own. */
export async function startBrokerFronts(upstreams: readonly string[], options: BrokerFrontOptions = {}): Promise<BrokerFronts> {
  const advertised = new Map<string, { host: string; port: number }>();
  const advertisedFor = (host: string, port: number) => advertised.get(`${host}:${port}`) ?? { host, port };

  const state: FrontState = {
    mechanisms: options.saslMechanisms ?? [],
    users: new Map(Object.entries(options.users ?? {})),
    authentications: [],
    connections: new Set(),
    // Metadata v0–6: [throttle_time_ms (v3+)] brokers [node_id host port rack (v1+)] …
    rewriteMetadata(body, version) {
      let offset = version >= 3 ? 4 : 0;
      const head = body.subarray(0, offset + 4);
      const count = body.readInt32BE(offset);
      offset += 4;
      const brokers: Buffer[] = [];
      for (let index = 0; index < count; index += 1) {
        const nodeId = body.readInt32BE(offset);
        const host = readString(body, offset + 4);
        const port = body.readInt32BE(host.next);
        offset = host.next + 4;
        let rack: Buffer = Buffer.alloc(0);
        if (version >= 1) {
          const read = readString(body, offset);
          rack = body.subarray(offset, read.next);
          offset = read.next;
        }
        const target = advertisedFor(host.value ?? '', port);
        brokers.push(int32(nodeId), kafkaString(target.host), int32(target.port), rack);
      }
      return Buffer.concat([head, ...brokers, body.subarray(offset)]);
    },
    // FindCoordinator v0: error_code node_id host port; v1–2: throttle_time_ms error_code error_message node_id host port
    rewriteCoordinator(body, version) {
      let offset = version >= 1 ? readString(body, 6).next : 2;
      offset += 4; // node_id
      const head = body.subarray(0, offset);
      const host = readString(body, offset);
      const port = body.readInt32BE(host.next);
      const target = advertisedFor(host.value ?? '', port);
      return Buffer.concat([head, kafkaString(target.host), int32(target.port), body.subarray(host.next + 4)]);
    },
  };

  const servers: Server[] = [];
  const addresses: string[] = [];
  for (const upstream of upstreams) {
    const server = createServer((client) => {
      state.connections.add(new FrontConnection(client, upstream, state));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    servers.push(server);
    addresses.push(`127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  const dropConnections = () => {
    for (const connection of [...state.connections]) connection.close();
  };
  return {
    addresses,
    advertise(targets) {
      if (targets.length !== upstreams.length) throw new Error(`Expected ${upstreams.length} addresses to advertise (actual: ${targets.length}).`);
      advertised.clear();
      targets.forEach((target, index) => {
        const separator = target.lastIndexOf(':');
        advertised.set(upstreams[index] ?? '', { host: target.slice(0, separator), port: Number(target.slice(separator + 1)) });
      });
    },
    setUsers(users) {
      state.users = new Map(Object.entries(users));
    },
    authentications: state.authentications,
    dropConnections,
    async close() {
      dropConnections();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
