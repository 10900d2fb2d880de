/**
 * Every error the agent raises on purpose. Each carries the context an operator needs to find the
 * run or message it is about, and never a secret: messages may hold bodies only when the caller
 * decided DETAILED_LOGGING allows it.
 */
export class AgentError extends Error {
  /** Whether trying the same thing again may succeed. */
  readonly retriable: boolean;

  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.retriable = options.retriable ?? false;
  }
}

/** A configuration value is missing or invalid; the process exits with code 2. */
export class ConfigError extends AgentError {
  readonly variable: string | undefined;

  constructor(message: string, options: { variable?: string; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'ConfigError';
    this.variable = options.variable;
  }
}

export interface MessageLocation {
  topic: string;
  partition: number;
  offset: string;
}

/** A message's bytes cannot be turned into an invocation. */
export class MessageError extends AgentError {
  readonly runId: string | undefined;

  constructor(message: string, options: { runId?: string; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'MessageError';
    this.runId = options.runId;
  }
}

/** A mapping cannot be compiled at start or evaluated for a run. */
export class MappingError extends AgentError {
  readonly mappingIndex: number | undefined;
  readonly field: string | undefined;
  readonly expression: string | undefined;

  constructor(
    message: string,
    options: { mappingIndex?: number; field?: string; expression?: string; cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = 'MappingError';
    this.mappingIndex = options.mappingIndex;
    this.field = options.field;
    this.expression = options.expression;
  }
}

/** A request to an internal service could not be made or did not complete. */
export class DeliveryError extends AgentError {
  readonly url: string;
  readonly method: string;
  readonly attempt: number;
  readonly code: string | undefined;

  constructor(
    message: string,
    options: { url: string; method: string; attempt: number; code?: string; retriable: boolean; cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DeliveryError';
    this.url = options.url;
    this.method = options.method;
    this.attempt = options.attempt;
    this.code = options.code;
  }
}

/** A call to the Port API failed. */
export class ReportError extends AgentError {
  readonly route: string;
  readonly status: number | undefined;
  readonly responseText: string | undefined;

  constructor(
    message: string,
    options: { route: string; status?: number; responseText?: string; retriable: boolean; cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ReportError';
    this.route = options.route;
    this.status = options.status;
    this.responseText = options.responseText;
  }
}

/** The text of any thrown value, for summaries and log fields. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  // JSONata throws plain objects carrying a message (and a code).
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  return String(error);
}
