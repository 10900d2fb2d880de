/**
 * JSON read from the raw message bytes into a tree that keeps what Python's `json.loads` keeps, so
 * the message can be serialised again exactly as the reference agent's `json.dumps` does (SPEC §4).
 * `JSON.parse` cannot do this: it reorders integer-like keys, loses integer digits past 2^53,
 * forgets number spelling (`1.0` vs `1`) and rejects `NaN`/`Infinity`, which Python accepts.
 */
import { Buffer, isUtf8 } from 'node:buffer';

/** A JSON object: entries in first-seen key order, each key once (a repeated key keeps its last value). */
export interface JsonObject {
  readonly type: 'object';
  readonly entries: readonly JsonEntry[];
}

/** One member of an object: its decoded key and value. */
export type JsonEntry = readonly [key: string, value: JsonNode];

/** A JSON array, items in order. */
export interface JsonArray {
  readonly type: 'array';
  readonly items: readonly JsonNode[];
}

/** A JSON string, escapes decoded (a lone surrogate escape stays a lone UTF-16 unit). */
export interface JsonString {
  readonly type: 'string';
  readonly value: string;
}

/**
 * A number as written. `isInteger` is Python's reading: no fraction and no exponent means an `int`
 * (printed with every digit of `raw`), anything else, `NaN` and `Infinity` included, a `float`.
 * `value` is the nearest double, so it is exact for floats and may round big integers.
 */
export interface JsonNumber {
  readonly type: 'number';
  readonly raw: string;
  readonly value: number;
  readonly isInteger: boolean;
}

/** `true` or `false`. */
export interface JsonBoolean {
  readonly type: 'boolean';
  readonly value: boolean;
}

/** `null`. */
export interface JsonNull {
  readonly type: 'null';
}

/** Any JSON value, discriminated by `type`. */
export type JsonNode = JsonObject | JsonArray | JsonString | JsonNumber | JsonBoolean | JsonNull;

/** The input is not JSON Python would read. The message never quotes the input: it may hold secrets. */
export class RawJsonSyntaxError extends Error {
  /** Character index in the decoded text (byte offset for invalid UTF-8). */
  readonly position: number;

  constructor(reason: string, position: number, unit: 'character' | 'byte' = 'character') {
    super(`${reason} at ${unit} ${position}`);
    this.name = 'RawJsonSyntaxError';
    this.position = position;
  }
}

/** Python raises RecursionError near 1000 levels; the bound also keeps hostile input off our stack. */
export const MAX_NESTING_DEPTH = 1000;
/** Python's default `sys.get_int_max_str_digits()`: `json.loads` refuses longer integers. */
const MAX_INTEGER_DIGITS = 4300;

const TRUE_NODE: JsonBoolean = Object.freeze({ type: 'boolean', value: true });
const FALSE_NODE: JsonBoolean = Object.freeze({ type: 'boolean', value: false });
const NULL_NODE: JsonNull = Object.freeze({ type: 'null' });
/** Below this many entries a linear scan for a repeated key beats building a Map. */
const LINEAR_KEY_SCAN_MAX = 16;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;
const MINUS = 0x2d;

function isDigit(code: number): boolean {
  return code >= ZERO && code <= NINE;
}

function hexValue(code: number): number {
  if (code >= ZERO && code <= NINE) return code - ZERO;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  return -1;
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonNode {
    this.skipWhitespace();
    const node = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail('Extra data');
    return node;
  }

  private fail(reason: string, position: number = this.pos): never {
    throw new RawJsonSyntaxError(reason, position);
  }

  // Python's json whitespace is exactly these four characters.
  private skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const code = text.charCodeAt(pos);
      if (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) pos++;
      else break;
    }
    this.pos = pos;
  }

  private parseValue(depth: number): JsonNode {
    const text = this.text;
    const code = text.charCodeAt(this.pos);
    switch (code) {
      case QUOTE:
        return { type: 'string', value: this.parseString() };
      case 0x7b: // {
        return this.parseObject(depth + 1);
      case 0x5b: // [
        return this.parseArray(depth + 1);
      case 0x74: // t
        return this.parseLiteral('true', TRUE_NODE);
      case 0x66: // f
        return this.parseLiteral('false', FALSE_NODE);
      case 0x6e: // n
        return this.parseLiteral('null', NULL_NODE);
      case 0x4e: // N
        return this.parseLiteral('NaN', { type: 'number', raw: 'NaN', value: Number.NaN, isInteger: false });
      case 0x49: // I
        return this.parseLiteral('Infinity', { type: 'number', raw: 'Infinity', value: Infinity, isInteger: false });
      default:
        if (code === MINUS && text.startsWith('-Infinity', this.pos)) {
          this.pos += 9;
          return { type: 'number', raw: '-Infinity', value: -Infinity, isInteger: false };
        }
        if (code === MINUS || isDigit(code)) return this.parseNumber();
        return this.fail(this.pos >= text.length ? 'Expecting value (end of input)' : 'Expecting value');
    }
  }

  private parseLiteral<T extends JsonNode>(word: string, node: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('Expecting value');
    this.pos += word.length;
    return node;
  }

  // The grammar of Python's scanner: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
  private parseNumber(): JsonNumber {
    const text = this.text;
    const start = this.pos;
    let pos = start;
    if (text.charCodeAt(pos) === MINUS) pos++;
    const first = text.charCodeAt(pos);
    if (first === ZERO) pos++;
    else if (isDigit(first)) {
      pos++;
      while (isDigit(text.charCodeAt(pos))) pos++;
    } else this.fail('Expecting value', start);
    let isInteger = true;
    if (text.charCodeAt(pos) === 0x2e && isDigit(text.charCodeAt(pos + 1))) {
      pos += 2;
      while (isDigit(text.charCodeAt(pos))) pos++;
      isInteger = false;
    }
    const e = text.charCodeAt(pos);
    if (e === 0x65 || e === 0x45) {
      let expPos = pos + 1;
      const sign = text.charCodeAt(expPos);
      if (sign === 0x2b || sign === MINUS) expPos++;
      if (isDigit(text.charCodeAt(expPos))) {
        expPos++;
        while (isDigit(text.charCodeAt(expPos))) expPos++;
        pos = expPos;
        isInteger = false;
      }
    }
    const raw = text.slice(start, pos);
    if (isInteger && raw.length - (raw.charCodeAt(0) === MINUS ? 1 : 0) > MAX_INTEGER_DIGITS) {
      this.fail('Integer has too many digits', start);
    }
    this.pos = pos;
    return { type: 'number', raw, value: Number(raw), isInteger };
  }

  private parseString(): string {
    const text = this.text;
    const opening = this.pos;
    let pos = opening + 1;
    let chunkStart = pos;
    let out = '';
    for (;;) {
      const code = text.charCodeAt(pos);
      if (code === QUOTE) {
        this.pos = pos + 1;
        return out + text.slice(chunkStart, pos);
      }
      if (code === BACKSLASH) {
        out += text.slice(chunkStart, pos);
        const escape = text.charAt(pos + 1);
        if (escape === 'u') {
          let unit = 0;
          for (let i = pos + 2; i < pos + 6; i++) {
            const digit = hexValue(text.charCodeAt(i));
            if (digit < 0) this.fail('Invalid \\uXXXX escape', pos);
            unit = unit * 16 + digit;
          }
          // JS strings are UTF-16 like the escapes, so a high and low surrogate escape side by
          // side join into one character and a lone one stays lone, as in Python.
          out += String.fromCharCode(unit);
          pos += 6;
        } else {
          const decoded = SHORT_ESCAPES[escape];
          if (decoded === undefined) this.fail('Invalid \\escape', pos);
          out += decoded;
          pos += 2;
        }
        chunkStart = pos;
        continue;
      }
      if (code < 0x20) this.fail('Invalid control character', pos);
      // NaN (past the end) compares false above, so test for the end only on this path.
      if (pos >= text.length) this.fail('Unterminated string starting', opening);
      pos++;
    }
  }

  private parseArray(depth: number): JsonArray {
    if (depth > MAX_NESTING_DEPTH) this.fail('JSON nested too deeply');
    const text = this.text;
    this.pos++;
    this.skipWhitespace();
    const items: JsonNode[] = [];
    if (text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return { type: 'array', items };
    }
    for (;;) {
      items.push(this.parseValue(depth));
      this.skipWhitespace();
      const code = text.charCodeAt(this.pos);
      this.pos++;
      if (code === 0x5d) return { type: 'array', items };
      if (code !== 0x2c) this.fail("Expecting ',' delimiter", this.pos - 1);
      this.skipWhitespace();
    }
  }

  private parseObject(depth: number): JsonObject {
    if (depth > MAX_NESTING_DEPTH) this.fail('JSON nested too deeply');
    const text = this.text;
    this.pos++;
    this.skipWhitespace();
    const entries: [string, JsonNode][] = [];
    if (text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return { type: 'object', entries };
    }
    let index: Map<string, number> | undefined;
    for (;;) {
      if (text.charCodeAt(this.pos) !== QUOTE) this.fail('Expecting property name enclosed in double quotes');
      const key = this.parseString();
      this.skipWhitespace();
      if (text.charCodeAt(this.pos) !== 0x3a) this.fail("Expecting ':' delimiter");
      this.pos++;
      this.skipWhitespace();
      const value = this.parseValue(depth);

      // SPEC §4: a repeated key keeps its last value at its first position, as a Python dict does.
      let existing = -1;
      if (index !== undefined) existing = index.get(key) ?? -1;
      else {
        for (let i = 0; i < entries.length; i++) {
          if ((entries[i] as [string, JsonNode])[0] === key) {
            existing = i;
            break;
          }
        }
      }
      if (existing >= 0) entries[existing] = [key, value];
      else {
        entries.push([key, value]);
        if (index !== undefined) index.set(key, entries.length - 1);
        else if (entries.length > LINEAR_KEY_SCAN_MAX) index = new Map(entries.map(([k], i): [string, number] => [k, i]));
      }

      this.skipWhitespace();
      const code = text.charCodeAt(this.pos);
      this.pos++;
      if (code === 0x7d) return { type: 'object', entries };
      if (code !== 0x2c) this.fail("Expecting ',' delimiter", this.pos - 1);
      this.skipWhitespace();
    }
  }
}

/** Byte offset of the first invalid UTF-8 sequence; only called once the input is known to be bad. */
function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] as number;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) low = 0xa0; // overlong
      if (lead === 0xed) high = 0x9f; // UTF-16 surrogates
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) low = 0x90; // overlong
      if (lead === 0xf4) high = 0x8f; // past U+10FFFF
    } else return i;
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      if (next === undefined || next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
    }
    i += length;
  }
  return bytes.length;
}

function decodeUtf8(bytes: Uint8Array): string {
  // The reference agent does `value.decode()`: strict UTF-8, an invalid byte fails the message.
  if (!isUtf8(bytes)) throw new RawJsonSyntaxError('Invalid UTF-8', firstInvalidUtf8Offset(bytes), 'byte');
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.toString('utf8');
}

/**
 * Parses JSON as Python's `json.loads(value.decode())` does: strict UTF-8 (a BOM is refused),
 * `NaN`/`Infinity`/`-Infinity` accepted, raw control characters in strings refused.
 * @throws RawJsonSyntaxError when Python would refuse the input too.
 */
export function parseRawJson(input: Buffer | Uint8Array | string): JsonNode {
  const text = typeof input === 'string' ? input : decodeUtf8(input);
  return new Parser(text).parseDocument();
}

/** The member `key` of an object node; undefined for anything else or a missing key. */
export function getMember(node: JsonNode | undefined, key: string): JsonNode | undefined {
  if (node === undefined || node.type !== 'object') return undefined;
  for (const entry of node.entries) {
    if (entry[0] === key) return entry[1];
  }
  return undefined;
}

/** Follows object keys from `node`; undefined as soon as one is missing. */
export function getPath(node: JsonNode | undefined, path: readonly string[]): JsonNode | undefined {
  let current = node;
  for (const key of path) current = getMember(current, key);
  return current;
}

function setOwnProperty(target: Record<string, unknown>, key: string, value: unknown): void {
  // A plain assignment to `__proto__` would replace the prototype instead of adding a member.
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * Plain JS values for the stages that do not need exact spelling (classification, mapping).
 * Integers past 2^53 round, and JS puts integer-like keys first; the tree keeps both exactly.
 */
export function toPlainValue(node: JsonNode): unknown {
  switch (node.type) {
    case 'object': {
      const result: Record<string, unknown> = {};
      for (const [key, value] of node.entries) setOwnProperty(result, key, toPlainValue(value));
      return result;
    }
    case 'array':
      return node.items.map(toPlainValue);
    case 'string':
    case 'number':
    case 'boolean':
      return node.value;
    case 'null':
      return null;
  }
}

function integerNode(digits: string): JsonNumber {
  return { type: 'number', raw: digits, value: Number(digits), isInteger: true };
}

/**
 * A tree for a plain JS value, read the way `JSON.stringify` reads it (`toJSON` honoured,
 * `undefined` members left out) except that `NaN`/`Infinity` stay numbers, as in Python.
 * A whole JS number becomes an integer, any other a float.
 * @throws TypeError for cycles, nesting past {@link MAX_NESTING_DEPTH} and values JSON cannot hold.
 */
export function fromPlainValue(value: unknown): JsonNode {
  const node = fromPlain(value, 0);
  if (node === undefined) throw new TypeError(`Cannot represent a ${typeof value} as JSON`);
  return node;
}

function fromPlain(value: unknown, depth: number): JsonNode | undefined {
  if (value === null) return NULL_NODE;
  switch (typeof value) {
    case 'string':
      return { type: 'string', value };
    case 'boolean':
      return value ? TRUE_NODE : FALSE_NODE;
    case 'bigint':
      return integerNode(value.toString());
    case 'number':
      if (Number.isInteger(value)) {
        return integerNode(Math.abs(value) < 1e21 ? String(value) : BigInt(value).toString());
      }
      return { type: 'number', raw: formatPythonFloat(value), value, isInteger: false };
    case 'object':
      break;
    default:
      return undefined;
  }
  if (depth >= MAX_NESTING_DEPTH) throw new TypeError('Value is nested too deeply (or cyclic) to be JSON');
  const toJson: unknown = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJson === 'function') return fromPlain(toJson.call(value), depth + 1);
  if (Array.isArray(value)) {
    // Array.from visits holes too (as undefined), which JSON.stringify writes as null; map skips them.
    return { type: 'array', items: Array.from(value, (item: unknown) => fromPlain(item, depth + 1) ?? NULL_NODE) };
  }
  const entries: [string, JsonNode][] = [];
  for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
    const node = fromPlain(member, depth + 1);
    if (node !== undefined) entries.push([key, node]);
  }
  return { type: 'object', entries };
}

/**
 * A double as Python's `repr(float)` writes it (json.dumps uses it): the shortest digits that
 * read back to the same double, positional between 1e-4 and 1e16 with at least one fraction digit,
 * otherwise `d.ddde±XX`. `NaN`, `Infinity` and `-Infinity` as json.dumps writes them.
 */
export function formatPythonFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-4 && magnitude < 1e16) {
    // Both languages write this range positionally with the same digits; Python adds `.0`.
    const js = String(value);
    return js.includes('.') ? js : `${js}.0`;
  }
  const sign = value < 0 ? '-' : '';
  // Number#toString is specified to give the shortest round-trip digits (closest on ties), the
  // same digits as Python's repr; only the layout differs.
  const js = String(magnitude);
  let digits: string;
  let exponent: number; // value = d.ddd × 10^exponent
  const e = js.indexOf('e');
  if (e >= 0) {
    digits = js.slice(0, e).replace('.', '');
    exponent = Number(js.slice(e + 1));
  } else {
    const dot = js.indexOf('.');
    const whole = dot < 0 ? js : js.slice(0, dot);
    const fraction = dot < 0 ? '' : js.slice(dot + 1);
    if (whole !== '0') {
      exponent = whole.length - 1;
      digits = (whole + fraction).replace(/0+$/, '');
    } else {
      const firstSignificant = fraction.search(/[1-9]/);
      exponent = -(firstSignificant + 1);
      digits = fraction.slice(firstSignificant);
    }
  }
  if (exponent < -4 || exponent >= 16) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const power = Math.abs(exponent);
    return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${power < 10 ? '0' : ''}${power}`;
  }
  const point = exponent + 1;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** How Python's `int` prints the literal: `-0` is plain 0, other spellings are already canonical. */
function formatPythonInteger(raw: string): string {
  return raw === '-0' ? '0' : raw;
}

/** The number as json.dumps prints what json.loads made of it. */
export function formatPythonNumber(node: JsonNumber): string {
  return node.isInteger ? formatPythonInteger(node.raw) : formatPythonFloat(node.value);
}

const CONTROL_ESCAPES: readonly string[] = Array.from({ length: 0x20 }, (_, code) => {
  switch (code) {
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    default:
      return `\\u${code.toString(16).padStart(4, '0')}`;
  }
});

// ensure_ascii=False: only `"`, `\` and C0 controls are escaped; DEL, U+2028/2029, `/` and every
// other character (lone surrogates too) stay raw.
function quotePython(value: string): string {
  let out = '"';
  let chunkStart = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code >= 0x20 && code !== QUOTE && code !== BACKSLASH) continue;
    out += value.slice(chunkStart, i);
    out += code === QUOTE ? '\\"' : code === BACKSLASH ? '\\\\' : (CONTROL_ESCAPES[code] as string);
    chunkStart = i + 1;
  }
  return chunkStart === 0 ? `"${value}"` : `${out}${value.slice(chunkStart)}"`;
}

function writeNode(node: JsonNode): string {
  switch (node.type) {
    case 'object': {
      let out = '{';
      const entries = node.entries;
      for (let i = 0; i < entries.length; i++) {
        const [key, value] = entries[i] as JsonEntry;
        if (i > 0) out += ',';
        out += quotePython(key);
        out += ':';
        out += writeNode(value);
      }
      return `${out}}`;
    }
    case 'array': {
      let out = '[';
      const items = node.items;
      for (let i = 0; i < items.length; i++) {
        if (i > 0) out += ',';
        out += writeNode(items[i] as JsonNode);
      }
      return `${out}]`;
    }
    case 'string':
      return quotePython(node.value);
    case 'number':
      return formatPythonNumber(node);
    case 'boolean':
      return node.value ? 'true' : 'false';
    case 'null':
      return 'null';
  }
}

/**
 * Exactly `json.dumps(obj, separators=(",", ":"), ensure_ascii=False)` of what `json.loads` made
 * of the parsed text (SPEC §4): the bytes the reference agent signs.
 */
export function serializePythonCompact(node: JsonNode): string {
  return writeNode(node);
}
