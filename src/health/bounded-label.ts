/**
 * A label whose values come from outside (a target host per tenant, built from the run by the
 * mapping): the first `limit` distinct values keep their own series, any later one is counted as
 * `other`, so a mapping that reaches thousands of hosts cannot grow the scrape without bound.
 */
export const OTHER_LABEL_VALUE = 'other';

export interface BoundedLabel {
  /** The value itself while it is one of the first `limit` seen, else `other`. */
  of(value: string): string;
}

export function createBoundedLabel(limit: number): BoundedLabel {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`Expected \`limit\` to be a non-negative integer (actual: ${limit})`);
  const seen = new Set<string>();
  return {
    of(value) {
      if (seen.has(value)) return value;
      if (seen.size >= limit) return OTHER_LABEL_VALUE;
      seen.add(value);
      return value;
    },
  };
}
