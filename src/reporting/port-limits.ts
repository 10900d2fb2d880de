/**
 * Port refuses request bodies over 1 MiB. What the agent reports is cut to fit before it is
 * sent, visibly, so a service answering with megabytes still ends in a report Port accepts.
 */
import { PORT_MAX_BODY_BYTES } from './port-client.js';

/**
 * Longest run-log line or summary, in characters. Even fully escaped (6 bytes a character) it
 * stays far below Port's limit, with room for the rest of the body.
 */
export const MAX_REPORTED_TEXT_CHARS = 65_536;
/** A response (or node-run output) larger than this as JSON is replaced by a note. */
const MAX_REPORTED_RESPONSE_BYTES = PORT_MAX_BODY_BYTES - 16_384;

/** The text, or its beginning with a marker saying how long it was. */
export function cutText(text: string, maxChars: number = MAX_REPORTED_TEXT_CHARS): string {
  if (text.length <= maxChars) return text;
  let end = maxChars;
  // Never split a surrogate pair: half a character is invalid UTF-16 and JSON.
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}… [cut by the agent: ${text.length} characters in all]`;
}

/**
 * Most responses are small: from the length of the text they were parsed from, their JSON cannot
 * come near the limit (at most 3 UTF-8 bytes a character, each escaped to at most 6), and the
 * body is not serialised once more just to be measured.
 */
function surelyFits(sourceTextLength: number | undefined): boolean {
  return sourceTextLength !== undefined && sourceTextLength * 18 + 2 <= MAX_REPORTED_RESPONSE_BYTES;
}

/**
 * The response body as it can be reported: itself, or a note with its size when too large.
 * `sourceTextLength`: the length of the text the body came from, when known.
 */
export function reportableResponse(body: unknown, sourceTextLength?: number): unknown {
  if (surelyFits(sourceTextLength)) return body;
  const json = JSON.stringify(body);
  const bytes = json === undefined ? 0 : Buffer.byteLength(json);
  if (bytes <= MAX_REPORTED_RESPONSE_BYTES) return body;
  return `The response was not reported: it is ${bytes} bytes as JSON, and Port accepts at most ${PORT_MAX_BODY_BYTES} bytes per call.`;
}

/** A status patch with every string field cut to fit (a mapping may render a huge summary). */
export function cutPatch(patch: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(patch).map(([key, value]) => [key, typeof value === 'string' ? cutText(value) : value]));
}
