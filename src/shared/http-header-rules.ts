/**
 * What Node.js can send as an HTTP header, checked before a request is made: a name or value it
 * refuses would throw inside the HTTP client, and a value outside Latin-1 would be mangled on the
 * wire. Used for the invocation method's headers and the mapping's alike.
 */

/** RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** No CR, LF, NUL or other controls; Latin-1 only. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function isHeaderName(name: string): boolean {
  return HEADER_NAME.test(name);
}

export function isHeaderValue(value: string): boolean {
  return HEADER_VALUE.test(value);
}
