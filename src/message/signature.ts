/**
 * Port's HMAC signatures: the one place that computes them, for incoming messages (SPEC §4) and
 * outgoing requests (SPEC §6).
 */
import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isPythonTruthy } from '../shared/json-shape.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../shared/port-headers.js';
import { formatPythonFloat, formatPythonNumber, getMember, getPath, serializePythonCompact, toPlainValue } from './raw-json.js';
import type { JsonEntry, JsonNode, JsonObject } from './raw-json.js';

// Re-exported: the message stage's callers and tests read them here.
export { SIGNATURE_HEADER, TIMESTAMP_HEADER };

const INVOCATION_METHOD_TYPE_PATH = ['payload', 'action', 'invocationMethod', 'type'] as const;

/** Why a message's signature was refused. */
export type SignatureFailureReason = 'missing-headers' | 'missing-signature' | 'missing-timestamp' | 'mismatch';

/** The outcome of checking an incoming message's signature. */
export type SignatureVerdict = { readonly valid: true } | { readonly valid: false; readonly reason: SignatureFailureReason };

/** `v1,` + base64(HMAC-SHA256(secret, `<timestamp>.<payload>`)), all text as UTF-8. */
export function computePortSignature(secret: string, timestamp: string, payload: string): string {
  const digest = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('base64');
  return `v1,${digest}`;
}

/** Python's truth value of what `json.loads` made of the node: the reference tests headers with `not`. */
function isTruthy(node: JsonNode | undefined): boolean {
  return node !== undefined && isPythonTruthy(toPlainValue(node));
}

/**
 * The timestamp as the reference agent puts it in the signed text, Python's `str()` of the JSON
 * value: an int with its digits, a float as `repr` (`nan`/`inf` in str's spelling), a string as
 * is. Undefined where the reference finds no timestamp (absent or falsy: 0, "", null, false) and
 * for values no signer sends (`true`, arrays, objects).
 */
export function timestampText(node: JsonNode | undefined): string | undefined {
  if (node === undefined || !isTruthy(node)) return undefined;
  if (node.type === 'string') return node.value;
  if (node.type !== 'number') return undefined;
  if (node.isInteger) return formatPythonNumber(node);
  if (Number.isNaN(node.value)) return 'nan';
  if (!Number.isFinite(node.value)) return node.value > 0 ? 'inf' : '-inf';
  return formatPythonFloat(node.value);
}

function isGitlabInvocation(root: JsonNode): boolean {
  const type = getPath(root, INVOCATION_METHOD_TYPE_PATH);
  return type?.type === 'string' && type.value === 'GITLAB';
}

/**
 * The text the signature covers (SPEC §4): the message without the two signature headers, the
 * `headers` object kept even when empty, or without the whole `headers` key for a GitLab
 * invocation, serialised like the reference agent's `json.dumps`. Builds new nodes only where
 * something is left out; `root` is not changed.
 */
export function canonicalSignedText(root: JsonNode): string {
  if (root.type !== 'object') return serializePythonCompact(root);
  const dropAllHeaders = isGitlabInvocation(root);
  const entries: JsonEntry[] = [];
  for (const entry of root.entries) {
    const [key, value] = entry;
    if (key !== 'headers') entries.push(entry);
    else if (dropAllHeaders) continue;
    else if (value.type === 'object') {
      const kept = value.entries.filter(([name]) => name !== SIGNATURE_HEADER && name !== TIMESTAMP_HEADER);
      entries.push([key, { type: 'object', entries: kept }]);
    } else entries.push(entry);
  }
  const unsigned: JsonObject = { type: 'object', entries };
  return serializePythonCompact(unsigned);
}

/**
 * Checks a runs-topic message against Port's signature (SPEC §4), from the tree parsed from its
 * raw bytes. Change-log messages are not signed: the caller does not ask for them.
 */
export function verifyIncomingSignature(root: JsonNode, secret: string): SignatureVerdict {
  const headers = getMember(root, 'headers');
  if (headers === undefined || headers.type !== 'object') return { valid: false, reason: 'missing-headers' };
  const signature = getMember(headers, SIGNATURE_HEADER);
  if (!isTruthy(signature)) return { valid: false, reason: 'missing-signature' };
  const timestamp = timestampText(getMember(headers, TIMESTAMP_HEADER));
  if (timestamp === undefined) return { valid: false, reason: 'missing-timestamp' };
  if (signature?.type !== 'string') return { valid: false, reason: 'mismatch' };

  const expected = Buffer.from(computePortSignature(secret, timestamp, canonicalSignedText(root)), 'utf8');
  const received = Buffer.from(signature.value, 'utf8');
  // Improvement over the reference's `!=`: constant time, so the comparison leaks no prefix length.
  const isMatch = expected.length === received.length && timingSafeEqual(expected, received);
  return isMatch ? { valid: true } : { valid: false, reason: 'mismatch' };
}
