/**
 * Which expression language a mapping file is written in. CONTROL_THE_PAYLOAD_DIALECT wins when it
 * is set; otherwise the file decides: an operator swapping the official agent's image for ours
 * keeps its jq mapping file and sets nothing, and a file written for us keeps working in JSONata.
 * Every expression is compiled in each dialect: the one in which all of them compile is chosen;
 * when both fit, JSONata (the default) is, and the reason says so.
 */
import { MappingError } from '../errors.js';
import { compileMappings } from './compile.js';
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
}

type Attempt = { fits: true; mappings: CompiledMapping[]; compiler: DialectCompiler } | { fits: false; error: MappingError };

function attempt(raw: unknown, dialect: MappingDialect, compilerFor: CompilerFactory): Attempt {
  const compiler = compilerFor(dialect);
  try {
    return { fits: true, mappings: compileMappings(raw, compiler), compiler };
  } catch (error) {
    compiler.close();
    if (error instanceof MappingError) return { fits: false, error };
    throw error;
  }
}

function chosen(result: Attempt & { fits: true }, dialect: MappingDialect, reason: string): CompiledInDialect {
  return { mappings: result.mappings, compiler: result.compiler, dialect, reason };
}

/** A dialect chosen by the operator, and where (`CONTROL_THE_PAYLOAD_DIALECT`, `--dialect`). */
export interface DialectSetting {
  dialect: MappingDialect;
  setBy: string;
}

/**
 * Compiles `raw` (a parsed mapping file) in the dialect `setting` names, or in the one its
 * expressions fit when `setting` is undefined.
 * @throws MappingError naming the first expression that fails (in each dialect, when detecting).
 */
export function compileInDialect(raw: unknown, setting: DialectSetting | undefined, compilerFor: CompilerFactory): CompiledInDialect {
  if (setting !== undefined) {
    const result = attempt(raw, setting.dialect, compilerFor);
    if (!result.fits) throw result.error;
    return chosen(result, setting.dialect, `${setting.setBy}=${setting.dialect}`);
  }
  const jsonata = attempt(raw, 'jsonata', compilerFor);
  const jq = attempt(raw, 'jq', compilerFor);
  if (jsonata.fits) {
    if (!jq.fits) return chosen(jsonata, 'jsonata', `${DIALECT_VARIABLE} is not set and every expression compiles as JSONata, not as jq (${jq.error.message})`);
    jq.compiler.close();
    return chosen(jsonata, 'jsonata', `${DIALECT_VARIABLE} is not set and every expression compiles both as JSONata and as jq: JSONata, the default (set ${DIALECT_VARIABLE}=jq for jq)`);
  }
  if (jq.fits) return chosen(jq, 'jq', `${DIALECT_VARIABLE} is not set and every expression compiles as jq, not as JSONata (${jsonata.error.message})`);
  // A mistake in the file's shape (not a list, an unknown field) is the same in either language.
  const structural = [jsonata.error, jq.error].find((error) => error.expression === undefined);
  if (structural) throw structural;
  throw new MappingError(`The payload mapping fits neither dialect (${DIALECT_VARIABLE} is not set). As JSONata: ${jsonata.error.message}. As jq: ${jq.error.message}`, {
    ...(jsonata.error.mappingIndex === undefined ? {} : { mappingIndex: jsonata.error.mappingIndex }),
  });
}
