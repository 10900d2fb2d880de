/**
 * Runs-topic messages signed as Port signs them (SPEC §4), so tests can put messages on the topic
 * that the agent accepts. Uses the agent's own serializer and HMAC: the fixtures in
 * `test/fixtures/incoming-signatures.json` are what pin those to the reference.
 */
import { fromPlainValue, getMember, serializePythonCompact } from '../../src/message/raw-json.js';
import type { JsonEntry, JsonNode, JsonObject } from '../../src/message/raw-json.js';
import {
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  canonicalSignedText,
  computePortSignature,
  timestampText,
} from '../../src/message/signature.js';

function withHeaders(root: JsonObject, headerEntries: readonly JsonEntry[]): JsonObject {
  const headers: JsonNode = { type: 'object', entries: headerEntries };
  const hasHeaders = root.entries.some(([key]) => key === 'headers');
  const entries: JsonEntry[] = hasHeaders
    ? root.entries.map((entry): JsonEntry => (entry[0] === 'headers' ? ['headers', headers] : entry))
    : [...root.entries, ['headers', headers]];
  return { type: 'object', entries };
}

/**
 * The JSON text of `message` with `headers["X-Port-Signature"]` and `headers["X-Port-Timestamp"]`
 * set (a `headers` object is added when missing; other headers are kept). For a GitLab invocation
 * the signature leaves out the whole `headers` key, as Port's does.
 * @param timestamp Unix seconds; the current time when omitted.
 */
export function signedMessageBytes(
  message: Record<string, unknown>,
  secret: string,
  timestamp: number = Math.floor(Date.now() / 1000),
): string {
  const root = fromPlainValue(message);
  if (root.type !== 'object') throw new TypeError('Expected `message` to be a JSON object.');
  const existing = getMember(root, 'headers');
  if (existing !== undefined && existing.type !== 'object') {
    throw new TypeError('Expected `message.headers` to be an object when present.');
  }
  const timestampNode = fromPlainValue(timestamp);
  const signedTimestamp = timestampText(timestampNode);
  if (signedTimestamp === undefined) throw new TypeError('Expected `timestamp` to be a non-zero number.');

  const otherHeaders = (existing?.entries ?? []).filter(([name]) => name !== SIGNATURE_HEADER && name !== TIMESTAMP_HEADER);
  const signature = computePortSignature(secret, signedTimestamp, canonicalSignedText(withHeaders(root, otherHeaders)));
  return serializePythonCompact(
    withHeaders(root, [...otherHeaders, [SIGNATURE_HEADER, { type: 'string', value: signature }], [TIMESTAMP_HEADER, timestampNode]]),
  );
}
