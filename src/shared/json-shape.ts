/** Type guards for JSON read at the edges (messages, mapping files, Port responses). */

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Python's truth value of a JSON value. The official agent tests values with `if value:`, so
 * `{}`, `[]`, `""`, `0` and `null` count as absent where it decides what to do.
 */
export function isPythonTruthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}
