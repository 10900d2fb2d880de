/**
 * Value formats for the convict schema. Environment variables arrive as strings; each format
 * coerces without throwing (a bad string is kept as it is) and its validator rejects what the
 * coercion could not turn into the right type, with a message saying what is expected.
 */
import type { Format } from 'convict';

// SPEC §1: the official agent accepts these spellings, in any case.
const TRUE_SPELLINGS = new Set(['true', '1', 'yes', 'on', 't', 'y']);
const FALSE_SPELLINGS = new Set(['false', '0', 'no', 'off', 'f', 'n']);

export function parseBoolean(value: string): boolean | undefined {
  const normalised = value.trim().toLowerCase();
  if (TRUE_SPELLINGS.has(normalised)) return true;
  if (FALSE_SPELLINGS.has(normalised)) return false;
  return undefined;
}

const booleanFormat: Format = {
  name: 'agent-boolean',
  coerce: (value: unknown) => (typeof value === 'string' ? (parseBoolean(value) ?? value) : value),
  validate: (value: unknown) => {
    if (typeof value !== 'boolean') throw new Error('must be one of true/false, 1/0, yes/no, on/off, t/f, y/n');
  },
};

function numberCoerce(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  if (trimmed === '') return value;
  const parsed = Number(trimmed);
  return Number.isFinite(parsed) ? parsed : value;
}

const positiveNumberFormat: Format = {
  name: 'positive-number',
  coerce: numberCoerce,
  validate: (value: unknown) => {
    if (typeof value !== 'number' || !(value > 0)) throw new Error('must be a number greater than 0');
  },
};

const nonNegativeNumberFormat: Format = {
  name: 'non-negative-number',
  coerce: numberCoerce,
  validate: (value: unknown) => {
    if (typeof value !== 'number' || !(value >= 0)) throw new Error('must be a number, 0 or more');
  },
};

const positiveIntegerFormat: Format = {
  name: 'positive-integer',
  coerce: numberCoerce,
  validate: (value: unknown) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new Error('must be a whole number, 1 or more');
    }
  },
};

const nonNegativeIntegerFormat: Format = {
  name: 'non-negative-integer',
  coerce: numberCoerce,
  validate: (value: unknown) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new Error('must be a whole number, 0 or more');
    }
  },
};

const requiredStringFormat: Format = {
  name: 'required-string',
  validate: (value: unknown) => {
    if (typeof value !== 'string' || value.trim() === '') throw new Error('is required and must not be empty');
  },
};

const optionalStringFormat: Format = {
  name: 'optional-string',
  validate: (value: unknown) => {
    if (typeof value !== 'string') throw new Error('must be a string');
  },
};

const httpUrlFormat: Format = {
  name: 'http-url',
  validate: (value: unknown) => {
    let url: URL | undefined;
    try {
      url = typeof value === 'string' ? new URL(value) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new Error('must be an http:// or https:// URL');
    }
  },
};

/** A case-insensitive choice, normalised to the spelling given in `choices`. */
export function choiceFormat(name: string, choices: readonly string[], aliases: Record<string, string> = {}): Format {
  const byLowerCase = new Map<string, string>();
  for (const choice of choices) byLowerCase.set(choice.toLowerCase(), choice);
  for (const [alias, target] of Object.entries(aliases)) byLowerCase.set(alias.toLowerCase(), target);
  const accepted = [...byLowerCase.keys()].join(', ');
  return {
    name,
    coerce: (value: unknown) =>
      typeof value === 'string' ? (byLowerCase.get(value.trim().toLowerCase()) ?? value) : value,
    validate: (value: unknown) => {
      if (typeof value !== 'string' || !choices.includes(value)) {
        throw new Error(`must be one of ${accepted} (any case)`);
      }
    },
  };
}

const tcpPortFormat: Format = {
  name: 'tcp-port',
  coerce: numberCoerce,
  validate: (value: unknown) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
      throw new Error('must be a TCP port, a whole number from 0 to 65535 (0: any free port)');
    }
  },
};

export const AGENT_FORMATS: readonly Format[] = [
  tcpPortFormat,
  booleanFormat,
  positiveNumberFormat,
  nonNegativeNumberFormat,
  positiveIntegerFormat,
  nonNegativeIntegerFormat,
  requiredStringFormat,
  optionalStringFormat,
  httpUrlFormat,
];
