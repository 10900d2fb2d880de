/**
 * Which expression language a mapping file is written in. CONTROL_THE_PAYLOAD_DIALECT wins when it
 * is set; otherwise the file decides: an operator swapping the official agent's image for ours
 * keeps its jq mapping file and sets nothing, and a file written for us keeps working in JSONata.
 *
 * The file is compiled as JSONata first (cheap). When every expression compiles, jq is tried only
 * to tell "JSONata only" from "both fit" (JSONata, the default, either way). Otherwise jq is chosen
 * when every expression compiles there, or when the official agent would run the file: the
 * expressions jq refuses (they yield null there, as in the official agent) are refused by JSONata
 * too, and JSONata refuses more.
 */
import { MappingError } from '../errors.js';
import { compileMappings, compileMappingsTolerating } from './compile.js';
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

type Compiled = { fits: true; mappings: CompiledMapping[]; uncompiled: MappingError[]; compiler: DialectCompiler; dialect: MappingDialect };
type Attempt = Compiled | { fits: false; error: MappingError };

/**
 * Compiles in `dialect`; `tolerating` keeps expressions the language refuses (as null), else the
 * first one fails the attempt. A mistake in the file's shape, or the engine failing, always does.
 */
function attempt(raw: unknown, dialect: MappingDialect, compilerFor: CompilerFactory, tolerating: boolean): Attempt {
  const compiler = compilerFor(dialect);
  try {
    const compiled = tolerating ? compileMappingsTolerating(raw, compiler) : { mappings: compileMappings(raw, compiler), uncompiled: [] };
    return { fits: true, ...compiled, compiler, dialect };
  } catch (error) {
    compiler.close();
    if (error instanceof MappingError) return { fits: false, error };
    throw error;
  }
}

function accepted(result: Compiled, reason: string): CompiledInDialect {
  return { mappings: result.mappings, compiler: result.compiler, dialect: result.dialect, reason, uncompiled: result.uncompiled };
}

/** A dialect chosen by the operator, and where (`CONTROL_THE_PAYLOAD_DIALECT`, `--dialect`). */
export interface DialectSetting {
  dialect: MappingDialect;
  setBy: string;
}

function expressionsThatDoNotCompile(count: number): string {
  return count === 1 ? '1 expression does not compile' : `${count} expressions do not compile`;
}

const placeOf = (error: MappingError): string => `${String(error.mappingIndex)}/${String(error.field)}`;

/** Whether every expression jq refuses is refused by JSONata too: a jq file with slips, not a JSONata file. */
function jsonataRefusesWhatJqRefuses(jq: Compiled, jsonata: Compiled): boolean {
  const refusedByJsonata = new Set(jsonata.uncompiled.map(placeOf));
  return jq.uncompiled.every((error) => refusedByJsonata.has(placeOf(error)));
}

function fitsNeither(jsonataError: MappingError, jqError: MappingError, hint: string): MappingError {
  return new MappingError(`The payload mapping fits neither dialect (${DIALECT_VARIABLE} is not set). As JSONata: ${jsonataError.message}. As jq: ${jqError.message}${hint}`, {
    ...(jsonataError.mappingIndex === undefined ? {} : { mappingIndex: jsonataError.mappingIndex }),
  });
}

/** The file's JSONata compiles whole: jq only decides how the reason reads. */
function jsonataFits(raw: unknown, jsonata: Compiled, compilerFor: CompilerFactory): CompiledInDialect {
  const jq = attempt(raw, 'jq', compilerFor, false);
  if (!jq.fits) return accepted(jsonata, `${DIALECT_VARIABLE} is not set and every expression compiles as JSONata, not as jq (${jq.error.message})`);
  jq.compiler.close();
  return accepted(jsonata, `${DIALECT_VARIABLE} is not set and every expression compiles both as JSONata and as jq: JSONata, the default (set ${DIALECT_VARIABLE}=jq for jq)`);
}

/**
 * Compiles `raw` (a parsed mapping file) in the dialect `setting` names, or in the one it is
 * written in when `setting` is undefined (see the module's comment).
 * @throws MappingError for a mistake in the file's shape, a JSONata expression that does not
 * compile, jq failing to run, or a file that fits neither dialect (naming the first expression
 * that fails in each).
 */
export function compileInDialect(raw: unknown, setting: DialectSetting | undefined, compilerFor: CompilerFactory): CompiledInDialect {
  if (setting !== undefined) {
    // The official agent runs a jq file with expressions jq refuses; a JSONata file is ours alone.
    const result = attempt(raw, setting.dialect, compilerFor, setting.dialect === 'jq');
    if (!result.fits) throw result.error;
    return accepted(result, `${setting.setBy}=${setting.dialect}`);
  }
  const jsonata = attempt(raw, 'jsonata', compilerFor, true);
  // A mistake in the file's shape (not a list, an unknown field) is the same in either language.
  if (!jsonata.fits) throw jsonata.error;
  const [jsonataError] = jsonata.uncompiled;
  if (!jsonataError) return jsonataFits(raw, jsonata, compilerFor);
  jsonata.compiler.close();
  const jq = attempt(raw, 'jq', compilerFor, true);
  if (!jq.fits) throw fitsNeither(jsonataError, jq.error, '');
  const [jqError] = jq.uncompiled;
  if (!jqError) return accepted(jq, `${DIALECT_VARIABLE} is not set and every expression compiles as jq, not as JSONata (${jsonataError.message})`);
  const looksLikeJq = jsonataRefusesWhatJqRefuses(jq, jsonata);
  if (looksLikeJq && jsonata.uncompiled.length > jq.uncompiled.length) {
    return accepted(
      jq,
      `${DIALECT_VARIABLE} is not set and the file is jq the official agent runs: ${expressionsThatDoNotCompile(jq.uncompiled.length)} in jq, each yielding null as in the official agent, and JSONata refuses those and more (${jsonataError.message})`,
    );
  }
  jq.compiler.close();
  throw fitsNeither(jsonataError, jqError, looksLikeJq ? `. Set ${DIALECT_VARIABLE}=jq to run it as the official agent does, the expressions jq refuses yielding null` : '');
}
