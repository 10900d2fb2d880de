/**
 * The Prometheus text exposition of the agent's GET /metrics, read as data: each sample's name,
 * labels and value, and the names a query may use (a histogram's `_bucket`, `_sum` and `_count`).
 */

export interface ExposedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;

function unescapeLabelValue(text: string): string {
  return text.replace(/\\(["\\n])/g, (_match, character: string) => (character === 'n' ? '\n' : character));
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL_PAIR.lastIndex = 0;
  let consumed = 0;
  for (let match = LABEL_PAIR.exec(text); match !== null; match = LABEL_PAIR.exec(text)) {
    labels[match[1] ?? ''] = unescapeLabelValue(match[2] ?? '');
    consumed = LABEL_PAIR.lastIndex;
  }
  if (consumed !== text.length) throw new Error(`unreadable labels in ${JSON.stringify(line)}`);
  return labels;
}

export function parseExposition(text: string): ExposedSample[] {
  const samples: ExposedSample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const match = SAMPLE_LINE.exec(line);
    if (!match) throw new Error(`unreadable sample line ${JSON.stringify(line)}`);
    samples.push({ name: match[1] ?? '', labels: parseLabels(match[2] ?? '', line), value: Number(match[3]) });
  }
  return samples;
}

/** Every name a query can select in this exposition: the families' names and their samples' names. */
export function exposedNames(text: string): Set<string> {
  const names = new Set(parseExposition(text).map((sample) => sample.name));
  for (const [, name = '', type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

/** The samples named `name` whose labels include `labels`. */
export function samplesOf(text: string, name: string, labels: Record<string, string> = {}): ExposedSample[] {
  return parseExposition(text).filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
}
