/**
 * One compiled expression of a payload mapping. The dialect is hidden behind this interface so
 * JSONata (the default) and jq (for mapping files written for the official agent) are
 * interchangeable to every other module.
 */
import jsonata from 'jsonata';
import { describeError } from '../errors.js';

export interface Expression {
  readonly source: string;
  /** Evaluates against `input`; a missing value is `undefined`. Rejects on an evaluation error. */
  evaluate(input: unknown): Promise<unknown>;
}

/** The language refused the expression; any other error from `compile` is the engine failing. */
export class ExpressionSyntaxError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExpressionSyntaxError';
  }
}

export interface ExpressionCompiler {
  readonly dialect: string;
  /** Throws an ExpressionSyntaxError describing the syntax problem, another Error when the engine fails. */
  compile(source: string): Expression;
}

/**
 * SPEC §5: expressions see the environment as `$env` (the official agent's jq sees `env`), minus
 * the agent's own secrets, which the caller has already removed.
 */
export function createJsonataCompiler(environment: Readonly<Record<string, string>>): ExpressionCompiler {
  const bindings = { env: environment };
  return {
    dialect: 'jsonata',
    compile(source: string): Expression {
      let compiled: jsonata.Expression;
      try {
        compiled = jsonata(source);
      } catch (error) {
        const position = (error as { position?: number }).position;
        throw new ExpressionSyntaxError(`${describeError(error)}${position === undefined ? "" : ` at position ${position}`}`, { cause: error });
      }
      return {
        source,
        evaluate: (input: unknown) => compiled.evaluate(input, bindings),
      };
    },
  };
}
