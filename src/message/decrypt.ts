/**
 * Decryption of the message fields a mapping lists in `fieldsToDecryptPaths` (SPEC §5): Port's
 * secret inputs, base64(iv[16] ‖ ciphertext ‖ tag[16]) under AES-256-GCM.
 */
import { Buffer } from 'node:buffer';
import { createDecipheriv } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { isPlainObject } from '../shared/json-shape.js';

const KEY_BYTES = 32;
const IV_BYTES = 16;
const TAG_BYTES = 16;

// Canonical decimal only: `01`, `-1`, `1e3` or ` 1` on an array are paths that do not exist.
const ARRAY_INDEX_PATTERN = /^(?:0|[1-9][0-9]*)$/;

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_PAD = '='.charCodeAt(0);
const MAX_ASCII = 0x7f;
const SEXTET_BY_CHAR_CODE: ReadonlyMap<number, number> = new Map(
  [...BASE64_ALPHABET].map((char, sextet) => [char.charCodeAt(0), sextet]),
);

// Python's bytes.decode('utf-8') is strict and keeps a leading BOM as U+FEFF.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A field that could not be decrypted. Never carries the value, encrypted or decrypted. */
export interface DecryptionWarning {
  path: string;
  reason: string;
}

/** The outcome of decoding base64 the way the official agent does. */
export type Base64Decoding = { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly reason: string };

type Container = Record<string, unknown> | unknown[];

type Decryption = { readonly ok: true; readonly plaintext: string } | { readonly ok: false; readonly reason: string };

type Lookup = { readonly found: true; readonly value: unknown } | { readonly found: false };

/**
 * The AES key for secret inputs: the first 32 bytes of the client secret's UTF-8 encoding (a cut
 * may fall inside a character: bytes count, not characters), or `undefined` when the secret is
 * shorter than 32 bytes.
 */
export function decryptionKey(clientSecret: string): Buffer | undefined {
  const bytes = Buffer.from(clientSecret, 'utf8');
  if (bytes.length < KEY_BYTES) return undefined;
  return Buffer.from(bytes.subarray(0, KEY_BYTES));
}

/**
 * Base64 decoded as the official agent's `base64.b64decode(value)` does (CPython 3.11
 * `binascii.a2b_base64`, non-strict), so a value it decrypts is decrypted here too:
 * - only the standard alphabet `A-Z a-z 0-9 + /` carries data; every other ASCII character
 *   (whitespace, line breaks, `-`, `_`, `%`, NUL…) is skipped, so url-safe text is not translated
 *   and decodes to other bytes;
 * - a non-ASCII character rejects the whole value (Python cannot encode the str to ASCII);
 * - padding is required: a final group of 2 or 3 data characters needs its `=`s, one lone data
 *   character is never valid; `=` before the second character of a group is skipped;
 * - once a group is completed by its `=`s, the rest of the text is ignored;
 * - unused low bits of the last character are ignored.
 */
export function decodePythonBase64(text: string): Base64Decoding {
  const bytes = Buffer.alloc(Math.ceil((text.length * 3) / 4));
  let length = 0;
  let quadPosition = 0;
  let leftBits = 0;
  let pads = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code > MAX_ASCII) return { ok: false, reason: 'contains a non-ASCII character' };
    if (code === BASE64_PAD) {
      if (quadPosition >= 2) {
        pads += 1;
        if (quadPosition + pads >= 4) return { ok: true, bytes: bytes.subarray(0, length) };
      }
      continue;
    }
    const sextet = SEXTET_BY_CHAR_CODE.get(code);
    if (sextet === undefined) continue;
    pads = 0;
    if (quadPosition === 0) {
      leftBits = sextet;
    } else if (quadPosition === 1) {
      bytes[length++] = ((leftBits << 2) | (sextet >> 4)) & 0xff;
      leftBits = sextet & 0x0f;
    } else if (quadPosition === 2) {
      bytes[length++] = ((leftBits << 4) | (sextet >> 2)) & 0xff;
      leftBits = sextet & 0x03;
    } else {
      bytes[length++] = ((leftBits << 6) | sextet) & 0xff;
      leftBits = 0;
    }
    quadPosition = (quadPosition + 1) % 4;
  }
  if (quadPosition === 1) return { ok: false, reason: 'one data character more than a multiple of 4' };
  if (quadPosition !== 0) return { ok: false, reason: 'incorrect padding' };
  return { ok: true, bytes: bytes.subarray(0, length) };
}

function decryptValue(encoded: string, key: Buffer): Decryption {
  const decoded = decodePythonBase64(encoded);
  if (!decoded.ok) return { ok: false, reason: `not base64: ${decoded.reason}` };
  const data = decoded.bytes;
  if (data.length < IV_BYTES + TAG_BYTES) {
    return { ok: false, reason: `shorter than the ${IV_BYTES + TAG_BYTES} bytes of IV and tag` };
  }
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return { ok: false, reason: 'authentication failed: wrong client secret or altered value' };
  }
  try {
    return { ok: true, plaintext: UTF8.decode(plaintext) };
  } catch {
    return { ok: false, reason: 'decrypted value is not valid UTF-8' };
  }
}

// Messages are parsed JSON: anything else (a Buffer, a Map, a class instance) is not walked into.
function isContainer(value: unknown): value is Container {
  if (Array.isArray(value)) return true;
  if (!isPlainObject(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

// Own properties only: `__proto__`, `constructor` or `prototype` in a path must never reach the
// prototype chain, yet a JSON key spelled that way is still an ordinary field.
function childOf(container: Container, segment: string): Lookup {
  if (Array.isArray(container)) {
    if (!ARRAY_INDEX_PATTERN.test(segment) || !Object.hasOwn(container, segment)) return { found: false };
    return { found: true, value: container[Number(segment)] };
  }
  if (!Object.hasOwn(container, segment)) return { found: false };
  return { found: true, value: container[segment] };
}

// defineProperty, not assignment: assigning to `__proto__` would replace the copy's prototype.
function setOwn(container: Container, segment: string, value: unknown): void {
  Object.defineProperty(container, segment, { value, writable: true, enumerable: true, configurable: true });
}

// Writable copies even of a frozen input; JSON has no symbol or non-enumerable keys to carry over.
function copyObject(object: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = Object.create(Object.getPrototypeOf(object) as object | null);
  for (const key of Object.keys(object)) setOwn(copy, key, object[key]);
  return copy;
}

function copyContainer(container: Container): Container {
  return Array.isArray(container) ? container.slice() : copyObject(container);
}

/** One step of a path: the container and the segment read from it. */
interface Step {
  container: Container;
  segment: string;
}

/** The steps from the root to the value, and the value; undefined when the path does not exist. */
function resolve(root: Container, segments: readonly string[]): { steps: Step[]; value: unknown } | undefined {
  const steps: Step[] = [];
  let current: unknown = root;
  for (const segment of segments) {
    if (!isContainer(current)) return undefined;
    const lookup = childOf(current, segment);
    if (!lookup.found) return undefined;
    steps.push({ container: current, segment });
    current = lookup.value;
  }
  return { steps, value: current };
}

/**
 * Writes `value` at the end of `steps` (the input's containers), copying each container once.
 * `copies` is keyed by position, not by object: an object the input holds in two places is copied
 * only where a path changes it.
 */
function assignCopying(steps: readonly Step[], value: unknown, copies: Map<string, Container>): void {
  const position: string[] = [];
  let parent: { copy: Container; segment: string } | undefined;
  for (const { container, segment } of steps) {
    const positionKey = JSON.stringify(position);
    let copy = copies.get(positionKey);
    if (copy === undefined) {
      copy = copyContainer(container);
      copies.set(positionKey, copy);
      if (parent !== undefined) setOwn(parent.copy, parent.segment, copy);
    }
    parent = { copy, segment };
    position.push(segment);
  }
  if (parent !== undefined) setOwn(parent.copy, parent.segment, value);
}

/**
 * Decrypts the string at each dotted path (`payload.properties.secret`; a numeric segment indexes
 * an array, on an object it is a key) into its UTF-8 plaintext (SPEC §5). Returns a new message:
 * the root is always a fresh object, nested objects and arrays are copied only along the paths
 * that change, and `message` is never modified. Paths are read from the input, each once. A path
 * that does not exist or does not hold a string, or a value that does not decrypt, is left as it
 * was and reported through `onWarning` with the path and a reason, never the value.
 *
 * @param key 32 bytes, from {@link decryptionKey}.
 * @param onDecrypted hears each plaintext, so the caller can keep it out of what it logs and
 *   reports ({@link withoutDecryptedValues}).
 */
export function decryptFields(
  message: Record<string, unknown>,
  paths: readonly string[],
  key: Buffer,
  onWarning: (warning: DecryptionWarning) => void,
  onDecrypted?: (plaintext: string) => void,
): Record<string, unknown> {
  if (key.length !== KEY_BYTES) {
    throw new TypeError(`Expected \`key\` to be ${KEY_BYTES} bytes (use decryptionKey()), got ${key.length}.`);
  }
  const result = copyObject(message);
  const copies = new Map<string, Container>([[JSON.stringify([]), result]]);
  for (const path of new Set(paths)) {
    const segments = path.split('.');
    const target = resolve(message, segments);
    if (target === undefined) {
      onWarning({ path, reason: 'path not found' });
      continue;
    }
    if (typeof target.value !== 'string') {
      onWarning({ path, reason: 'value is not a string' });
      continue;
    }
    const decryption = decryptValue(target.value, key);
    if (!decryption.ok) {
      onWarning({ path, reason: decryption.reason });
      continue;
    }
    assignCopying(target.steps, decryption.plaintext, copies);
    onDecrypted?.(decryption.plaintext);
  }
  return result;
}

/** What a decrypted value becomes in text the agent logs or reports. */
export const DECRYPTED_VALUE_PLACEHOLDER = '[decrypted value]';

function encodeOrSame(encode: (text: string) => string, text: string): string {
  try {
    return encode(text);
  } catch {
    // A lone surrogate cannot be percent-encoded; then no URL holds it encoded either.
    return text;
  }
}

/**
 * `text` with every decrypted value in it replaced by {@link DECRYPTED_VALUE_PLACEHOLDER} (SPEC §9:
 * decrypted values never appear in logs): an expression's error quotes the value it failed on, and
 * a URL rendered from one shows it in its path. Each value is looked for as is, JSON-escaped and
 * percent-encoded. Even a one-character value is replaced: secrecy over readability.
 */
export function withoutDecryptedValues(text: string, values: Iterable<string>): string {
  const spellings = new Set<string>();
  for (const value of values) {
    if (value === '') continue;
    spellings.add(value);
    spellings.add(JSON.stringify(value).slice(1, -1));
    spellings.add(encodeOrSame(encodeURI, value));
    spellings.add(encodeOrSame(encodeURIComponent, value));
  }
  let result = text;
  // Longest first, so no spelling is cut by a shorter one inside it.
  for (const spelling of [...spellings].sort((a, b) => b.length - a.length)) {
    if (result.includes(spelling)) result = result.split(spelling).join(DECRYPTED_VALUE_PLACEHOLDER);
  }
  return result;
}
