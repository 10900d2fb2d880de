/**
 * Which expression language a mapping file is written in. CONTROL_THE_PAYLOAD_DIALECT wins when it
 * is set; otherwise the file decides: an operator swapping the official agent's image for ours
 * keeps its jq mapping file and sets nothing, and a file written for us keeps working in JSONata.
 * Every expression is compiled in each dialect: the one in which all of them compile is chosen;
 * when both fit, JSONata (the default) is, and the reason says so.
 */
import { MappingError } from '../errors.js';
import { compileMappingsTolerating } from './compile.js';
import type { DialectCompiler, MappingDialect } from './dialects.js';
import type { CompiledMapping } from './types.js';

const DIALECT_VARIABLE = 'CONTROL_THE_PAYLOAD_DIALECT';

/** A new compiler of the dialect; the caller closes the one it keeps, this module the others. */
export type CompilerFactory = (dialect: MappingDialect) => DialectCompiler;

export interface CompiledInDialect {
  mappings: CompiledMapping[];
  /** The compiler the mappings were compiled by, still open: their expressions evaluate through it. */
  compiler: DialectCompiler;
  dialect: MappingDialect;
  /** Why this dialect, for the start-up log line. */
  reason: string;
  /**
   * jq expressions that do not compile, each kept as one that yields null, as the official agent
   * treats them; empty in JSONata, where one stops the start.
   */
  uncompiled: MappingError[];
}

type Attempt =
  | { fits: true; mappings: CompiledMapping[]; uncompiled: MappingError[]; compiler: DialectCompiler; dialect: MappingDialect }
  | { fits: false; error: MappingError };

function attempt(raw: unknown, dialect: MappingDialect, compilerFor: CompilerFactory): Attempt {
  const compiler = compilerFor(dialect);
  try {
    return { fits: true, ...compileMappingsTolerating(raw, compiler), compiler, dialect };
  } catch (error) {
    compiler.close();
    if (error instanceof MappingError) return { fits: false, error };
    throw error;
  }
}

type Compiled = Attempt & { fits: true };

/**
 * The official agent runs a jq file with expressions jq refuses (they yield null there); a JSONata
 * file is ours alone, and a typo in it stops the start.
 */
function accepted(result: Attempt, reason: string): CompiledInDialect {
  if (!result.fits) throw result.error;
  const [firstUncompiled] = result.uncompiled;
  if (result.dialect === 'jsonata' && firstUncompiled) {
    result.compiler.close();
    throw firstUncompiled;
  }
  return { mappings: result.mappings, compiler: result.compiler, dialect: result.dialect, reason, uncompiled: result.uncompiled };
}

/** A dialect chosen by the operator, and where (`CONTROL_THE_PAYLOAD_DIALECT`, `--dialect`). */
export interface DialectSetting {
  dialect: MappingDialect;
  setBy: string;
}

function closing(result: Compiled, other: Compiled, reason: string): CompiledInDialect {
  other.compiler.close();
  return accepted(result, reason);
}

function expressionsThatDoNotCompile(count: number): string {
  return count === 1 ? '1 expression does not compile' : `${count} expressions do not compile`;
}

/**
 * Compiles `raw` (a parsed mapping file) in the dialect `setting` names, or in the one its
 * expressions fit when `setting` is undefined: the one where all compile (JSONata, the default,
 * when both do), else jq when fewer of its expressions fail there than in JSONata.
 * @throws MappingError for a mistake in the file's shape, or naming the first expression that fails
 * (in each dialect, when detecting).
 */
export function compileInDialect(raw: unknown, setting: DialectSetting | undefined, compilerFor: CompilerFactory): CompiledInDialect {
  if (setting !== undefined) return accepted(attempt(raw, setting.dialect, compilerFor), `${setting.setBy}=${setting.dialect}`);
  const jsonata = attempt(raw, 'jsonata', compilerFor);
  const jq = attempt(raw, 'jq', compilerFor);
  // A mistake in the file's shape (not a list, an unknown field) is the same in either language.
  const misshapen = [jsonata, jq].find((result): result is Attempt & { fits: false } => !result.fits);
  if (misshapen || !jsonata.fits || !jq.fits) {
    for (const result of [jsonata, jq]) if (result.fits) result.compiler.close();
    throw misshapen?.error;
  }
  const [jsonataError] = jsonata.uncompiled;
  const [jqError] = jq.uncompiled;
  if (!jsonataError) {
    if (jqError) return closing(jsonata, jq, `${DIALECT_VARIABLE} is not set and every expression compiles as JSONata, not as jq (${jqError.message})`);
    return closing(jsonata, jq, `${DIALECT_VARIABLE} is not set and every expression compiles both as JSONata and as jq: JSONata, the default (set ${DIALECT_VARIABLE}=jq for jq)`);
  }
  if (!jqError) return closing(jq, jsonata, `${DIALECT_VARIABLE} is not set and every expression compiles as jq, not as JSONata (${jsonataError.message})`);
  if (jq.uncompiled.length < jsonata.uncompiled.length) {
    return closing(
      jq,
      jsonata,
      `${DIALECT_VARIABLE} is not set and fewer expressions fail as jq (${expressionsThatDoNotCompile(jq.uncompiled.length)}, each yields null as in the official agent) than as JSONata (${jsonataError.message})`,
    );
  }
  jsonata.compiler.close();
  jq.compiler.close();
  throw new MappingError(`The payload mapping fits neither dialect (${DIALECT_VARIABLE} is not set). As JSONata: ${jsonataError.message}. As jq: ${jqError.message}`, {
    ...(jsonataError.mappingIndex === undefined ? {} : { mappingIndex: jsonataError.mappingIndex }),
  });
}
