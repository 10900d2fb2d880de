import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import {
  MAX_NESTING_DEPTH,
  RawJsonSyntaxError,
  formatPythonFloat,
  fromPlainValue,
  getMember,
  getPath,
  parseRawJson,
  serializePythonCompact,
  toPlainValue,
} from './raw-json.js';
import type { JsonNode } from './raw-json.js';

/** What the reference agent signs: json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False). */
function pythonCompact(text: string | Uint8Array): string {
  return serializePythonCompact(parseRawJson(text));
}

function syntaxError(input: string | Uint8Array): RawJsonSyntaxError {
  try {
    parseRawJson(input);
  } catch (error) {
    assert.ok(error instanceof RawJsonSyntaxError, `expected a RawJsonSyntaxError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the input to be rejected');
}

function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

describe('parseRawJson and serializePythonCompact', () => {
  it('keeps keys in their original order, integer-like keys included', () => {
    const text = '{"b":1,"a":2,"10":"ten","2":"two","z":{"y":1,"x":[3,2,1]}}';
    assert.equal(pythonCompact(text), text);
    const root = parseRawJson(text);
    assert.equal(root.type, 'object');
    assert.deepEqual(
      root.type === 'object' && root.entries.map(([key]) => key),
      ['b', 'a', '10', '2', 'z'],
    );
  });

  it('keeps the last value of a repeated key at its first position, as a Python dict does', () => {
    assert.equal(pythonCompact('{"d":"first","e":1,"d":"second"}'), '{"d":"second","e":1}');
    assert.equal(pythonCompact('{"a":1,"a":{"x":1},"a":[2]}'), '{"a":[2]}');
  });

  it('handles repeated keys in large objects too', () => {
    const keys = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`);
    const text = `{${keys.join(',')},"k3":"again","k39":"last"}`;
    const expected = `{${keys.map((entry, i) => (i === 3 ? '"k3":"again"' : i === 39 ? '"k39":"last"' : entry)).join(',')}}`;
    assert.equal(pythonCompact(text), expected);
  });

  it('writes floats as Python repr', () => {
    const cases: [string, string][] = [
      ['1.0', '1.0'],
      ['0.1', '0.1'],
      ['1e16', '1e+16'],
      ['1E2', '100.0'],
      ['1e-7', '1e-07'],
      ['1e-07', '1e-07'],
      ['-0.0', '-0.0'],
      ['0.0', '0.0'],
      ['0e5', '0.0'],
      ['12.50', '12.5'],
      ['2.5E-3', '0.0025'],
      ['0.0001', '0.0001'],
      ['0.00001', '1e-05'],
      ['1e15', '1000000000000000.0'],
      ['9999999999999998.0', '9999999999999998.0'],
      ['123456789.123456789', '123456789.12345679'],
      ['1.5e300', '1.5e+300'],
      ['-1.5E+300', '-1.5e+300'],
      ['1.7976931348623157e308', '1.7976931348623157e+308'],
      ['5e-324', '5e-324'],
      ['1e-400', '0.0'],
      ['1e400', 'Infinity'],
      ['-1e400', '-Infinity'],
      ['123456789012345678.0', '1.2345678901234568e+17'],
      ['0.30000000000000004', '0.30000000000000004'],
    ];
    for (const [input, expected] of cases) assert.equal(pythonCompact(input), expected, input);
  });

  it('formats doubles so they read back to the same value', () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5000; i++) {
      const value = (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20);
      const text = formatPythonFloat(value);
      assert.ok(Object.is(Number(text), value), `${value} -> ${text}`);
      assert.match(text, /^-?(\d+\.\d+|\d(\.\d+)?e[+-]\d{2,3})$/);
    }
  });

  it('keeps every digit of integers, even past 2^53', () => {
    for (const text of ['9223372036854775807', '-12345678901234567890123', '123456789012345678901234567890', '0', '42', '-7']) {
      assert.equal(pythonCompact(text), text);
    }
    assert.equal(pythonCompact('-0'), '0', 'Python int("-0") is 0');
    assert.equal(pythonCompact('[1,1.0,1e0]'), '[1,1.0,1.0]');
  });

  it('refuses integers longer than Python converts (4300 digits)', () => {
    assert.equal(pythonCompact('9'.repeat(4300)), '9'.repeat(4300));
    assert.match(syntaxError(`-${'9'.repeat(4301)}`).message, /too many digits/);
  });

  it('accepts NaN, Infinity and -Infinity and writes them back as such', () => {
    assert.equal(pythonCompact('{"nan":NaN,"inf":Infinity,"ninf":-Infinity}'), '{"nan":NaN,"inf":Infinity,"ninf":-Infinity}');
    for (const bad of ['nan', '-NaN', 'infinity', '+Infinity', '-Inf']) syntaxError(bad);
  });

  it('escapes like json.dumps with ensure_ascii=False', () => {
    const input = '"\\b\\f\\n\\r\\t|\\u0000\\u0001\\u001F|\\u007f\\u2028\\u2029|\\/|\\"|\\\\|\\u00e9\\u65e5\\ud83d\\ude80"';
    const expected = '"\\b\\f\\n\\r\\t|\\u0000\\u0001\\u001f|\u007f\u2028\u2029|/|\\"|\\\\|é日🚀"';
    assert.equal(pythonCompact(input), expected);
    assert.equal(pythonCompact('"</script> a/b"'), '"</script> a/b"');
    assert.equal(pythonCompact('{"k\\n\\u00e9":1}'), '{"k\\né":1}');
  });

  it('reads raw UTF-8 text and keeps it raw', () => {
    const text = '{"title":"Déploiement ✓ — 日本語 🚀","del":"\u007f","seps":"\u2028\u2029"}';
    assert.equal(pythonCompact(Buffer.from(text, 'utf8')), text);
  });

  it('keeps lone surrogates from escapes as Python does', () => {
    const root = parseRawJson('["\\ud800","\\udc00x","\\ud800\\udc00"]');
    assert.deepEqual(toPlainValue(root), ['\ud800', '\udc00x', '\u{10000}']);
    assert.equal(serializePythonCompact(root), '["\ud800","\udc00x","\u{10000}"]');
  });

  it('refuses raw control characters in strings but not DEL', () => {
    assert.match(syntaxError('"a\nb"').message, /control character at character 2/);
    syntaxError('"\t"');
    assert.equal(pythonCompact('"\u007f"'), '"\u007f"');
  });

  it('accepts only the four JSON whitespace characters', () => {
    assert.equal(pythonCompact(' \t\r\n{ "a" :\n[ 1 , 2 ] }\r\n'), '{"a":[1,2]}');
    syntaxError('\u00a0{}');
    syntaxError('{}\u000b');
  });

  it('refuses a UTF-8 byte order mark, as json.loads(value.decode()) does', () => {
    syntaxError(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]));
    syntaxError('\ufeff{}');
  });

  it('refuses what Python refuses', () => {
    const bad = [
      '',
      '   ',
      '{"a":1,}',
      '[1,]',
      '[,1]',
      '01',
      '1.',
      '.5',
      '+1',
      '1e',
      '0x10',
      "{'a':1}",
      '{a:1}',
      '{"a" 1}',
      '{"a":1 "b":2}',
      '"unterminated',
      '"bad \\x escape"',
      '"\\u12"',
      '"\\u12G4"',
      '{} {}',
      'true false',
      'tru',
      'nul',
      '[1 2]',
      '{"a":1',
      '[',
      '"\\',
    ];
    for (const input of bad) {
      const error = syntaxError(input);
      assert.equal(error.name, 'RawJsonSyntaxError');
      assert.match(error.message, / at character \d+$/, input);
    }
  });

  it('names the position and never quotes the input', () => {
    const error = syntaxError('{"password":"hunter2" oops}');
    assert.equal(error.position, 22);
    assert.ok(!error.message.includes('hunter2') && !error.message.includes('oops'), error.message);
  });

  it('accepts nesting up to the depth limit and refuses deeper input without overflowing the stack', () => {
    assert.equal(pythonCompact(nested(MAX_NESTING_DEPTH)), nested(MAX_NESTING_DEPTH));
    assert.match(syntaxError(nested(MAX_NESTING_DEPTH + 1)).message, /nested too deeply/);
    assert.match(syntaxError('{"a":'.repeat(200_000)).message, /nested too deeply/);
    assert.match(syntaxError('['.repeat(1_000_000)).message, /nested too deeply/);
  });

  it('rejects a Buffer that is not valid UTF-8, naming the byte offset', () => {
    const invalid: [number[], number][] = [
      [[0x22, 0xff, 0x22], 1],
      [[0x22, 0x61, 0xc0, 0x80, 0x22], 2], // overlong
      [[0x22, 0xed, 0xa0, 0x80, 0x22], 1], // an encoded surrogate
      [[0x22, 0xe2, 0x82], 1], // truncated
      [[0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], 1], // past U+10FFFF
    ];
    for (const [bytes, offset] of invalid) {
      const error = syntaxError(Buffer.from(bytes));
      assert.match(error.message, /^Invalid UTF-8 at byte \d+$/);
      assert.equal(error.position, offset);
    }
  });

  it('reads a Uint8Array view at an offset', () => {
    const backing = new TextEncoder().encode('xx{"a":"é"}yy');
    assert.equal(pythonCompact(backing.subarray(2, backing.length - 2)), '{"a":"é"}');
  });

  it('writes empty containers, booleans and null', () => {
    const text = '{"list":[],"obj":{},"none":null,"t":true,"f":false,"s":""}';
    assert.equal(pythonCompact(text), text);
  });
});

describe('toPlainValue', () => {
  it('gives plain values', () => {
    assert.deepEqual(toPlainValue(parseRawJson('{"a":[1,2.5,"x",true,null],"b":{"c":NaN}}')), {
      a: [1, 2.5, 'x', true, null],
      b: { c: Number.NaN },
    });
  });

  it('makes a __proto__ key an own property without touching prototypes', () => {
    const plain = toPlainValue(parseRawJson('{"__proto__":{"polluted":true},"a":1}')) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(plain), Object.prototype);
    assert.deepEqual(Object.keys(plain), ['__proto__', 'a']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(plain, '__proto__')?.value, { polluted: true });
    assert.equal((plain as { polluted?: unknown }).polluted, undefined);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    assert.equal(pythonCompact('{"__proto__":{"polluted":true},"a":1}'), '{"__proto__":{"polluted":true},"a":1}');
  });
});

describe('getMember and getPath', () => {
  const root = parseRawJson('{"payload":{"action":{"invocationMethod":{"type":"GITLAB"}}},"list":[1]}');

  it('finds members and paths', () => {
    assert.deepEqual(getPath(root, ['payload', 'action', 'invocationMethod', 'type']), { type: 'string', value: 'GITLAB' });
    assert.equal(getMember(root, 'list')?.type, 'array');
  });

  it('gives undefined for missing keys and non-objects', () => {
    assert.equal(getMember(root, 'missing'), undefined);
    assert.equal(getPath(root, ['list', '0']), undefined);
    assert.equal(getMember(undefined, 'a'), undefined);
    assert.equal(getMember(parseRawJson('"text"'), 'length'), undefined);
  });
});

describe('fromPlainValue', () => {
  it('builds the tree JSON.stringify would read', () => {
    const node = fromPlainValue({ a: 1, b: 1.5, c: 'x', d: [undefined, null], e: undefined, f: new Date(0), g: 10n ** 20n });
    assert.equal(serializePythonCompact(node), '{"a":1,"b":1.5,"c":"x","d":[null,null],"f":"1970-01-01T00:00:00.000Z","g":100000000000000000000}');
  });

  it('writes the holes of a sparse array as null, as JSON.stringify does', () => {
    const sparse: unknown[] = [];
    sparse[2] = 'x';
    assert.equal(serializePythonCompact(fromPlainValue({ list: sparse })), JSON.stringify({ list: sparse }));
  });

  it('writes whole numbers as integers and keeps NaN and Infinity', () => {
    const node: JsonNode = fromPlainValue([1e21, -0, 1e-7, Number.NaN, -Infinity]);
    assert.equal(serializePythonCompact(node), '[1000000000000000000000,0,1e-07,NaN,-Infinity]');
  });

  it('refuses cycles and values JSON cannot hold', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => fromPlainValue(cyclic), TypeError);
    assert.throws(() => fromPlainValue(undefined), TypeError);
    assert.throws(() => fromPlainValue(() => 1), TypeError);
  });
});
